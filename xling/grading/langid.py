"""Language identification behind one function: `detect(text) -> code | None`.

Backends:
- ``langdetect`` (default; what the paper used for the off-target rate), made deterministic by
  seeding its factory. Unrestricted: it may name any of its 55 languages.
- ``lingua`` (lingua-language-detector), restricted to the languages in play (default: the 11 of
  the xling table); much faster and better on short texts. One detector per language set, cached.
- ``langid`` (langid.py; the ICLR-2026 consistency-reward ablation). Unrestricted, 97 languages.

Before any backend sees a text it is cleaned: ``<think>`` tags, code, boxed answers, inline math,
LaTeX commands, URLs, digits and symbols are removed. What is left must hold at least `min_chars`
letters (a Han, kana or Hangul character counts as 3, about a word), else the language is
undetermined (None). Digit-only, empty or LaTeX-only texts are None, never an exception.

The script decides before the backend where it is unambiguous among the table's languages: a text
whose letters are mostly (60%) Thai, Bengali or Telugu script is th, bn or te; mostly Han/kana is ja
when kana make up at least a tenth of those characters, else zh. Other texts go to the backend.

Returned codes: the xling code for the table's languages (``zh-cn``/``zh-tw`` become ``zh``); any
other language the backend names is returned as its raw ISO 639-1 code (e.g. ``pt``, ``so``), so it
counts as off-target; None when undetermined or when the backend gives up.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Iterable, Sequence

from xling.common.errors import XlingError
from xling.data.languages import CODES

BACKENDS: tuple[str, ...] = ("langdetect", "lingua", "langid")
DEFAULT_BACKEND = "langdetect"
DEFAULT_MIN_CHARS = 20
_SCRIPT_SHARE = 0.6
_KANA_SHARE = 0.1
_ALIASES = {"zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh", "zh-hant": "zh"}

_CODE_BLOCK = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9_-]*>")
_URL = re.compile(r"https?://\S+|www\.\S+")
_DISPLAY_MATH = re.compile(r"\$\$.{0,1000}?\$\$|\\\[.{0,1000}?\\\]|\\\(.{0,1000}?\\\)", re.DOTALL)
_INLINE_MATH = re.compile(r"\$([^$\n]{1,300}?)\$")
_COMMAND = re.compile(r"\\[A-Za-z]+\*?|\\.")
_WORD = re.compile(r"[^\W\d_]{3,}")
_NOISE = re.compile(r"[\d_=+\-*/^<>|~#%$&@{}\[\]()\\]+")
_SPACE = re.compile(r"\s+")


def reasoning_part(text: str) -> str:
    """The text before `</think>` (the reasoning), or all of it when there is no `</think>`."""
    head, sep, _ = text.partition("</think>")
    return head if sep else text


def _strip_boxes(text: str) -> str:
    from xling.grading.boxes import boxes

    found = boxes(text)
    if not found:
        return text
    out, last = [], 0
    for start, end, _ in found:
        if start >= last:
            out.append(text[last:start])
            last = end
    out.append(text[last:])
    return " ".join(out)


def _inline_math(match: re.Match) -> str:
    content = _COMMAND.sub(" ", match.group(1))
    return " " if not _WORD.search(content) else match.group(1)  # "$5 and $" is prose, keep it


def clean(text: str) -> str:
    """Natural-language text only: no tags, code, boxes, math, LaTeX, URLs, digits or symbols."""
    text = _CODE_BLOCK.sub(" ", str(text or ""))
    text = _TAG.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _strip_boxes(text)
    text = _DISPLAY_MATH.sub(" ", text)
    text = _INLINE_MATH.sub(_inline_math, text)
    text = _COMMAND.sub(" ", text)
    text = _NOISE.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


_BLOCKS = (
    ("th", 0x0E00, 0x0E7F), ("bn", 0x0980, 0x09FF), ("te", 0x0C00, 0x0C7F), ("kana", 0x3040, 0x30FF),
    ("kana", 0x31F0, 0x31FF), ("kana", 0xFF66, 0xFF9F), ("han", 0x4E00, 0x9FFF), ("han", 0x3400, 0x4DBF),
    ("han", 0xF900, 0xFAFF), ("hangul", 0xAC00, 0xD7AF), ("hangul", 0x1100, 0x11FF),
)
_WIDE = {"kana", "han", "hangul"}


@lru_cache(maxsize=65536)
def _char_script(ch: str) -> str | None:
    """The script group of a letter (vowel signs included), None for anything else."""
    if not (ch.isalpha() or unicodedata.category(ch) in ("Mn", "Mc")):
        return None
    cp = ord(ch)
    return next((name for name, lo, hi in _BLOCKS if lo <= cp <= hi), "other")


def letter_counts(text: str) -> dict[str, int]:
    """Weighted letters per script group ('th', 'bn', 'te', 'kana', 'han', 'hangul', 'other').

    Vowel signs count as letters; a Han, kana or Hangul character counts 3.
    """
    counts: dict[str, int] = {}
    for ch, n in Counter(text).items():
        script = _char_script(ch)
        if script:
            counts[script] = counts.get(script, 0) + n * (3 if script in _WIDE else 1)
    return counts


def _by_script(counts: dict[str, int], languages: Sequence[str]) -> str | None:
    total = sum(counts.values())
    for code in ("th", "bn", "te"):
        if counts.get(code, 0) >= _SCRIPT_SHARE * total and code in languages:
            return code
    han, kana = counts.get("han", 0), counts.get("kana", 0)
    if han + kana >= _SCRIPT_SHARE * total and han + kana > 0:
        code = "ja" if kana >= _KANA_SHARE * (han + kana) else "zh"
        if code in languages:
            return code
    return None


def normalize_code(code: str | None) -> str | None:
    """A backend's code as xling uses it: 'zh-cn' -> 'zh'; others lower-cased as given."""
    if not code:
        return None
    code = code.lower().replace("_", "-")
    return _ALIASES.get(code, code)


# ------------------------------------------------------------------------------------ backends

_lock = threading.Lock()


def _langdetect(text: str, languages: Sequence[str]) -> str | None:
    from langdetect import DetectorFactory, detect as ld_detect
    from langdetect.detector_factory import init_factory
    from langdetect.lang_detect_exception import LangDetectException

    with _lock:  # its profiles load on first use into a module global
        init_factory()
    DetectorFactory.seed = 0
    try:
        return ld_detect(text)
    except LangDetectException:
        return None


@lru_cache(maxsize=8)
def lingua_detector(languages: tuple[str, ...]):
    """A lingua detector for exactly these languages, built once."""
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    rows = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in languages]
    return LanguageDetectorBuilder.from_languages(*rows).build()


def _lingua_code(result) -> str | None:
    return result.iso_code_639_1.name.lower() if result is not None else None


def _lingua(text: str, languages: Sequence[str]) -> str | None:
    return _lingua_code(lingua_detector(tuple(languages)).detect_language_of(text))


def _langid(text: str, languages: Sequence[str]) -> str | None:
    import langid

    with _lock:  # langid loads its model on first use through a module global
        code, _ = langid.classify(text)
    return code


_BACKENDS = {"langdetect": _langdetect, "lingua": _lingua, "langid": _langid}


def check_backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise XlingError(f"unknown language-ID backend '{backend}'; choose one of: {', '.join(BACKENDS)}")
    return backend


def _check_languages(languages: Iterable[str] | None) -> tuple[str, ...]:
    if languages is None:
        return CODES
    out = tuple(languages)
    if not out:
        raise XlingError("language identification needs at least one language to choose from")
    for code in out:
        if code not in CODES:
            from xling.data.languages import unknown_language_message
            raise XlingError(unknown_language_message(code))
    return out


def _prepare(text: str, min_chars: int, reasoning_only: bool, languages: Sequence[str]) -> tuple[str, str | None, bool]:
    """(cleaned text, decision by script or None, whether the backend must decide)."""
    text = str(text or "")
    if reasoning_only:
        text = reasoning_part(text)
    cleaned = clean(text)
    counts = letter_counts(cleaned)
    if sum(counts.values()) < max(1, min_chars):
        return cleaned, None, False
    by_script = _by_script(counts, languages)
    return cleaned, by_script, by_script is None


def detect(text: str, backend: str = DEFAULT_BACKEND, *, min_chars: int = DEFAULT_MIN_CHARS,
           reasoning_only: bool = False, languages: Iterable[str] | None = None) -> str | None:
    """The language of `text` as an xling code (or another backend's raw code), None if undetermined.

    `reasoning_only` judges only the part before `</think>`; `languages` are the languages in play
    (lingua chooses among them; the script rules only return them).
    """
    fn = _BACKENDS[check_backend(backend)]
    langs = _check_languages(languages)
    cleaned, decided, ask = _prepare(text, min_chars, reasoning_only, langs)
    if not ask:
        return decided
    try:
        return normalize_code(fn(cleaned, langs))
    except Exception:  # a detector failing on odd input means "undetermined", not a crash
        return None


def _detect_texts(texts: list[str], backend: str, min_chars: int, reasoning_only: bool,
                  languages: tuple[str, ...]) -> list[str | None]:
    return [detect(t, backend, min_chars=min_chars, reasoning_only=reasoning_only, languages=languages) for t in texts]


def detect_batch(texts: Sequence[str], backend: str = DEFAULT_BACKEND, *, min_chars: int = DEFAULT_MIN_CHARS,
                 reasoning_only: bool = False, languages: Iterable[str] | None = None,
                 pool=None, chunksize: int = 16, timeout: float = 10.0) -> list[str | None]:
    """`detect` for many texts. With a `xling.grading.workers.WorkerPool`, the slow backends (langdetect,
    langid) run in its worker processes, `chunksize` texts per task (`timeout` seconds per text);
    lingua runs its own threads."""
    check_backend(backend)
    langs = _check_languages(languages)
    if pool is not None and backend != "lingua" and len(texts) > chunksize:
        chunks = [(list(texts[k:k + chunksize]), backend, min_chars, reasoning_only, langs)
                  for k in range(0, len(texts), chunksize)]
        out: list[str | None] = []
        for (value, _), chunk in zip(pool.map(_detect_texts, chunks, timeout=timeout * chunksize), chunks):
            out.extend(value if value is not None else [None] * len(chunk[0]))  # a timed-out chunk: undetermined
        return out
    results: list[str | None] = [None] * len(texts)
    todo: list[tuple[int, str]] = []
    for i, text in enumerate(texts):
        cleaned, decided, ask = _prepare(text, min_chars, reasoning_only, langs)
        results[i] = decided
        if ask:
            todo.append((i, cleaned))
    if not todo:
        return results
    cleaned_texts = [t for _, t in todo]
    if backend == "lingua":
        codes = [_lingua_code(r) for r in lingua_detector(langs).detect_languages_in_parallel_of(cleaned_texts)]
    else:
        fn = _BACKENDS[backend]
        codes = []
        for text in cleaned_texts:
            try:
                codes.append(fn(text, langs))
            except Exception:
                codes.append(None)
    for (i, _), code in zip(todo, codes):
        results[i] = normalize_code(code)
    return results


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "DEFAULT_MIN_CHARS", "detect", "detect_batch", "clean",
           "reasoning_part", "letter_counts", "normalize_code", "lingua_detector", "check_backend"]
