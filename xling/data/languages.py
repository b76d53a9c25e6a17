"""The language table: one row per language drives prompts, answer parsing and language checks.

Adding a language is adding a row to `_ROWS`. Strings for the instruction and the
prompt-hacking prefix are the paper's (docs/protocol.md#prompt-hacking).
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from typing import Iterable

from xling.common.errors import XlingError


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 code used everywhere in xling
    name: str  # English name
    native: str  # the language's name for itself
    script: str  # Latin, Cyrillic, Bengali, Thai, Han, Japanese (Han + kana), Telugu
    think: str  # "Please always think in …", in the language itself
    prefix: str  # assistant pre-fill that forces the reasoning language (prompt hacking)
    answer_cues: tuple[str, ...]  # localized "the answer is" cues, lower case
    digits: str | None = None  # the native digits 0–9, where the language has its own
    decimal_comma: bool = False  # people write 3,5 for 3.5 (and 70.000 or 70 000 for 70000)
    low_resource: bool = False
    or_words: tuple[str, ...] = ()  # "or": two answers joined by one of these are a hedge
    and_words: tuple[str, ...] = ()  # "and": answers joined by one of these are parts of one answer


_ROWS = (
    Language("en", "English", "English", "Latin",
             "Please always think in English.",
             "By request, I will start thinking in English.",
             ("the answer is", "the final answer is", "final answer:", "answer:", "the correct answer is",
              "the correct option is", "the right answer is", "the best answer is", "correct answer:"),
             or_words=("or", "alternatively", "either"), and_words=("and",)),
    Language("es", "Spanish", "Español", "Latin",
             "Por favor, siempre piensa en español.",
             "A petición, empezaré a pensar en español.",
             ("la respuesta es", "la respuesta final es", "respuesta final:", "respuesta:",
              "la respuesta correcta es", "la opción correcta es"),
             decimal_comma=True,
             or_words=("o", "u", "alternativamente"), and_words=("y", "e")),
    Language("ru", "Russian", "Русский", "Cyrillic",
             "Пожалуйста, всегда думайте по-русски.",
             "По запросу я начну думать на русском.",
             ("ответ —", "ответ:", "ответ равен", "окончательный ответ:", "ответ -", "правильный ответ",
              "правильный вариант"),
             decimal_comma=True,
             or_words=("или", "либо"), and_words=("и",)),
    Language("de", "German", "Deutsch", "Latin",
             "Bitte denken Sie immer auf Deutsch.",
             "Auf Anfrage werde ich anfangen, in Deutsch zu denken.",
             ("die antwort lautet", "die antwort ist", "endgültige antwort:", "antwort:",
              "die richtige antwort ist", "die richtige antwort lautet", "die korrekte antwort ist"),
             decimal_comma=True,
             or_words=("oder", "alternativ"), and_words=("und",)),
    Language("fr", "French", "Français", "Latin",
             "Veuillez toujours réfléchir en français.",
             "Sur demande, je commencerai à penser en français.",
             ("la réponse est", "la réponse finale est", "réponse finale :", "réponse :",
              "réponse:", "la bonne réponse est", "la réponse correcte est"),
             decimal_comma=True,
             or_words=("ou",), and_words=("et",)),
    Language("bn", "Bengali", "বাংলা", "Bengali",
             "দয়া করে সর্বদা বাংলায় চিন্তা করুন।",
             "অনুরোধ করলে, আমি বাংলায় চিন্তা করা শুরু করব।",
             ("উত্তর হল", "উত্তর হলো", "চূড়ান্ত উত্তর", "উত্তর:", "সঠিক উত্তর"),
             digits="০১২৩৪৫৬৭৮৯", low_resource=True,
             or_words=("অথবা", "বা"), and_words=("এবং", "ও")),
    Language("th", "Thai", "ไทย", "Thai",
             "กรุณาคิดเป็นภาษาไทยเสมอ.",
             "ตามคำขอ ฉันจะเริ่มคิดเป็นภาษาไทย",
             ("คำตอบคือ", "คำตอบสุดท้ายคือ", "คำตอบ:", "คำตอบที่ถูกต้องคือ"),
             digits="๐๑๒๓๔๕๖๗๘๙",
             or_words=("หรือ",), and_words=("และ",)),
    Language("sw", "Swahili", "Kiswahili", "Latin",
             "Tafadhali daima fikiria kwa Kiswahili.",
             "Kwa ombi, nitaanza kufikiria kwa Kiswahili.",
             ("jibu ni", "jibu la mwisho ni", "jibu:", "jibu sahihi ni"),
             low_resource=True,
             or_words=("au", "ama"), and_words=("na",)),
    Language("zh", "Chinese", "中文", "Han",
             "请始终用中文思考。",
             "应要求，我将开始用中文思考。",
             ("答案是", "最终答案是", "答案为", "答案：", "答案:", "正确选项是", "应选"),
             or_words=("或", "或者", "还是"), and_words=("和", "与", "及")),
    Language("ja", "Japanese", "日本語", "Japanese",
             "常に日本語で考えてください。",
             "要求があれば、日本語で考え始めます。",
             ("答えは", "最終的な答えは", "答え：", "答え:", "解答：", "正解は"),
             or_words=("または", "あるいは", "もしくは"), and_words=("と", "および")),
    Language("te", "Telugu", "తెలుగు", "Telugu",
             "దయచేసి ఎప్పుడూ తెలుగు లో ఆలోచించండి.",
             "అభ్యర్థన మేరకు, నేను తెలుగులో ఆలోచించడం ప్రారంభిస్తాను.",
             ("సమాధానం", "జవాబు"),
             digits="౦౧౨౩౪౫౬౭౮౯", low_resource=True,
             or_words=("లేదా",), and_words=("మరియు",)),
)

LANGUAGES: dict[str, Language] = {row.code: row for row in _ROWS}
CODES: tuple[str, ...] = tuple(LANGUAGES)
# The order in which the paper adds parallel languages to English (k = 1 … 7).
PARALLEL_ORDER: tuple[str, ...] = ("ru", "fr", "es", "de", "bn", "th", "zh")


def get(code: str) -> Language:
    """The row for `code`; an unknown code is an error listing the valid ones."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise XlingError(unknown_language_message(code)) from None


def unknown_language_message(code: str) -> str:
    near = get_close_matches(str(code).lower(), CODES, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return f"unknown language '{code}'{hint}; valid codes: {', '.join(CODES)}"


def check_codes(codes: Iterable[str]) -> tuple[str, ...]:
    """Validate language codes ('all' expands to every language), keeping order, no repeats."""
    out: list[str] = []
    for code in codes:
        if code == "all":
            out.extend(c for c in CODES if c not in out)
            continue
        get(code)
        if code not in out:
            out.append(code)
    return tuple(out)


def parallel_languages(k: int, order: Iterable[str] = PARALLEL_ORDER) -> tuple[str, ...]:
    """English plus the first k languages of `order`: the paper's training set for k."""
    order = check_codes(order)
    if not 0 <= k <= len(order):
        raise XlingError(f"k={k} parallel languages asked for, but the order has {len(order)}")
    return ("en",) + tuple(order[:k])
