"""A labelled set of completions for the grader's accuracy benchmark (`python -m xling.perf.grading`).

Real-looking completions — a little reasoning in the problem's language, then the final answer in
the forms models write it — each labelled with the verdict of a careful human grader: right when
the one answer the completion commits to equals the gold, wrong otherwise (a hedge between two
different answers is wrong). The set is built in code from a seed, in the 11 languages, and grouped
by kind (``math``, ``number``, ``choice``) and form:

- math: ``boxed``, ``unboxed LaTeX`` (``$...$``, ``\\(...\\)``, ``\\[...\\]``, after a cue or not),
  ``plain after cue`` (``3/4``, ``12:00``, ``.4``, ``\\frac13``, ``(C)``), ``hedged``,
  ``multi-part``, ``revised`` (an intermediate box, then a final statement);
- number: ``boxed``, ``cue``, ``last number`` (with locale separators and native digits),
  ``fraction`` ("3/4." before a full stop), ``LaTeX`` (``$\\frac{3}{4}$``, digits inside LaTeX),
  ``units/percent``, ``decimal-comma gold``, ``hedged``, ``revised``;
- choice: ``boxed``, ``cue`` (all 11 languages, "(C)", "C.", "**C**"), ``last line``,
  ``last cue wins``, ``hedged``.

`accuracy()` grades every case with xling's grader and with math-verify called directly,
``verify(parse(gold), parse(completion))`` with the gold first — the gold in ``$...$`` as math-verify
expects LaTeX, and for letters with its letter extraction (``StringExtractionConfig`` A–J) — and
counts agreements with the labels per kind and form, and how many wrong answers each marked right
(generous) or right answers wrong (strict).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

from xling.data.languages import CODES, LANGUAGES


@dataclass(frozen=True)
class Case:
    completion: str
    gold: str
    lang: str
    kind: str  # math, number, choice
    form: str
    correct: bool  # the label: a careful grader's verdict


# Reasoning without numbers, per language (the answer comes after it).
REASONING = {
    "en": "Let us read the problem carefully and write down what we know. We combine the quantities step by step.",
    "es": "Leamos el problema con atención y anotemos los datos. Combinamos las cantidades paso a paso.",
    "ru": "Внимательно прочитаем условие и запишем, что известно. Объединим величины шаг за шагом.",
    "de": "Wir lesen die Aufgabe sorgfältig und schreiben auf, was wir wissen. Wir rechnen Schritt für Schritt.",
    "fr": "Lisons attentivement l'énoncé et notons ce que nous savons. Nous combinons les quantités pas à pas.",
    "bn": "আসুন প্রশ্নটি মনোযোগ দিয়ে পড়ি এবং যা জানি তা লিখে রাখি। আমরা ধাপে ধাপে হিসাব করি।",
    "th": "เรามาอ่านโจทย์อย่างละเอียดและจดสิ่งที่เรารู้ไว้ก่อน แล้วคำนวณทีละขั้นตอน",
    "sw": "Hebu tusome swali kwa makini na tuandike tunachokijua. Tunahesabu hatua kwa hatua.",
    "zh": "我们先仔细读题，把已知条件写下来，然后一步一步地计算。",
    "ja": "まず問題をよく読み、分かっていることを書き出します。そして一歩ずつ計算します。",
    "te": "ముందుగా ప్రశ్నను జాగ్రత్తగా చదివి, మనకు తెలిసిన విషయాలను రాసుకుందాం. దశలవారీగా లెక్కిస్తాం.",
}
# A step with intermediate numbers: {a} {b} {c} (c = a * b), in the language.
STEP = {
    "en": "There are {a} boxes with {b} items each, so {a} × {b} = {c} items.",
    "es": "Hay {a} cajas con {b} objetos cada una, así que {a} × {b} = {c} objetos.",
    "ru": "Есть {a} коробок по {b} предметов, значит {a} × {b} = {c} предметов.",
    "de": "Es gibt {a} Kisten mit je {b} Teilen, also {a} × {b} = {c} Teile.",
    "fr": "Il y a {a} boîtes de {b} objets, donc {a} × {b} = {c} objets.",
    "bn": "{a}টি বাক্সে {b}টি করে জিনিস, তাই {a} × {b} = {c}টি জিনিস।",
    "th": "มีกล่อง {a} กล่อง กล่องละ {b} ชิ้น ดังนั้น {a} × {b} = {c} ชิ้น",
    "sw": "Kuna masanduku {a} yenye vitu {b} kila moja, kwa hiyo {a} × {b} = {c}.",
    "zh": "有 {a} 个盒子，每个 {b} 件，所以 {a} × {b} = {c} 件。",
    "ja": "箱が {a} 個で各 {b} 個なので、{a} × {b} = {c} 個です。",
    "te": "{a} పెట్టెల్లో ఒక్కోదానిలో {b} వస్తువులు, కాబట్టి {a} × {b} = {c}.",
}
# "Wait, let me check that again." before a revised answer.
RECHECK = {
    "en": "Wait, let me check that again.", "es": "Espera, revisemos de nuevo.", "ru": "Подождите, проверим ещё раз.",
    "de": "Moment, ich prüfe das noch einmal.", "fr": "Attendez, vérifions encore.", "bn": "দাঁড়াও, আবার যাচাই করি।",
    "th": "เดี๋ยวก่อน ตรวจสอบอีกครั้ง", "sw": "Subiri, tuhakiki tena.", "zh": "等一下，我再检查一遍。",
    "ja": "待って、もう一度確認します。", "te": "ఆగండి, మళ్ళీ తనిఖీ చేద్దాం.",
}
THOUSANDS = {"de": ".", "es": ".", "fr": "\u202f", "ru": " "}

# Math answers: (gold, forms that are right, forms that are wrong). The right forms are what a
# careful grader accepts for that gold; math-verify must understand them to count them.
MATH_ITEMS: list[tuple[str, list[str], list[str]]] = [
    ("\\frac{1}{3}", ["\\dfrac{1}{3}", "\\frac13", "\\frac{2}{6}"], ["\\frac{1}{4}", "3"]),
    ("\\frac{\\sqrt{3}}{2}", ["\\frac{\\sqrt3}{2}", "\\dfrac{\\sqrt{3}}{2}"], ["\\frac{\\sqrt{2}}{2}", "\\sqrt{3}"]),
    ("2\\sqrt{5}", ["\\sqrt{20}", "2 \\sqrt{5}"], ["5\\sqrt{2}", "2"]),
    ("(-\\infty, 3]", ["(-\\infty,3]", "\\left(-\\infty, 3\\right]"], ["(-\\infty, 3)", "[3, \\infty)"]),
    ("(2, -1)", ["(2,-1)", "\\left(2, -1\\right)"], ["(-1, 2)", "(2, 1)"]),
    ("\\begin{pmatrix} 3 \\\\ -1 \\end{pmatrix}", ["\\begin{pmatrix}3\\\\-1\\end{pmatrix}"],
     ["\\begin{pmatrix} -1 \\\\ 3 \\end{pmatrix}"]),
    ("x^2 + 2x + 1", ["(x+1)^2", "x^2+2x+1"], ["(x-1)^2", "x^2 + 1"]),
    ("0.4", [".4", "\\frac{2}{5}"], ["0.04", "4"]),
    ("\\frac{3\\pi}{4}", ["\\frac{3}{4}\\pi", "\\dfrac{3\\pi}{4}"], ["\\frac{\\pi}{4}", "3"]),
    ("\\text{(C)}", ["(C)", "\\text{(C)}"], ["(B)", "(D)"]),
    ("4:30", ["4:30"], ["4:00", "5:30"]),
    ("-7", ["-7", "x = -7"], ["7", "x = 7"]),
    ("y = 2x + 3", ["y=2x+3", "y = 3 + 2x"], ["y = 3x + 2"]),
    ("12", ["12", "x = 12"], ["13", "1.2"]),
    ("\\frac{7}{2}", ["3.5", "\\frac{14}{4}"], ["\\frac{2}{7}", "7"]),
]
# Multi-part golds: (gold, its parts in order, a wrong part).
MULTI_ITEMS = [("2, 5", ["2", "5"], "6"), ("-1, 3", ["-1", "3"], "1"), ("\\frac{1}{2}, 4", ["\\frac{1}{2}", "4"], "2")]
# Plain (un-LaTeXed) answers after a cue that math-verify's own reading might miss: (gold, right, wrong).
PLAIN_ITEMS = [("\\frac{3}{4}", "3/4", "3"), ("12:00", "12:00", "12"), ("0.4", ".4", "4"), ("\\frac{1}{3}", "\\frac13", "13"),
               ("\\text{(C)}", "(C)", "(D)"), ("2x+1", "2x + 1", "2x"), ("(2, 3)", "(2, 3)", "(3, 2)")]


def _cue(lang: str) -> str:
    cue = LANGUAGES[lang].answer_cues[0]
    return cue[0].upper() + cue[1:]


def _local(n: int, lang: str, rng: random.Random, native: bool = True) -> str:
    text = f"{n:,}".replace(",", THOUSANDS.get(lang, ",")) if n >= 1000 else str(n)
    digits = LANGUAGES[lang].digits
    if native and digits and rng.random() < 0.5:
        text = text.translate({ord(str(i)): d for i, d in enumerate(digits)})
    return text


def _step(lang: str, rng: random.Random) -> str:
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    return STEP[lang].format(a=a, b=b, c=a * b)


def math_cases(rng: random.Random) -> list[Case]:
    out: list[Case] = []

    def add(text: str, gold: str, lang: str, form: str, correct: bool) -> None:
        out.append(Case(f"{REASONING[lang]} {text}", gold, lang, "math", form, correct))

    for i, (gold, rights, wrongs) in enumerate(MATH_ITEMS):
        for j, pred in enumerate(rights + wrongs):
            lang = CODES[(i + j) % len(CODES)]
            right = pred in rights
            cue = _cue(lang)
            add(f"{cue} $\\boxed{{{pred}}}$.", gold, lang, "boxed", right)
            add([f"So we get $x = {pred}$." if not pred.startswith(("x", "y")) else f"So we get ${pred}$.",
                 f"{cue} ${pred}$.", f"Thus\n\\[\n{pred}\n\\]", f"The result is \\({pred}\\)."][(i + j) % 4],
                gold, lang, "unboxed LaTeX", right)
            other = wrongs[0] if right else rights[0]
            add(f"$\\boxed{{{other}}}$ {RECHECK[lang]} {cue} ${pred}$.", gold, lang, "revised", right)
        wrong_lang = CODES[i % len(CODES)]
        or_word = LANGUAGES[wrong_lang].or_words[0]
        add(f"$\\boxed{{{rights[0]}}}$ {or_word} $\\boxed{{{wrongs[0]}}}$", gold, wrong_lang, "hedged", False)
        add(f"{_cue(wrong_lang)} ${wrongs[0]}$ {or_word} ${rights[0]}$.", gold, wrong_lang, "hedged", False)
    for i, (gold, parts, bad) in enumerate(MULTI_ITEMS):
        lang = CODES[(3 * i) % len(CODES)]
        and_word, or_word = LANGUAGES[lang].and_words[0], LANGUAGES[lang].or_words[0]
        add(f"$x = \\boxed{{{parts[0]}}}$ {or_word} $x = \\boxed{{{parts[1]}}}$.", gold, lang, "multi-part", True)
        add(f"(a) $\\boxed{{{parts[0]}}}$ (b) $\\boxed{{{parts[1]}}}$", gold, lang, "multi-part", True)
        add(f"{_cue(lang)} ${parts[0]}$ {and_word} ${parts[1]}$.", gold, lang, "multi-part", True)
        add(f"$\\boxed{{{parts[0]}}}$", gold, lang, "multi-part", False)
        add(f"$\\boxed{{{parts[0]}}}$, $\\boxed{{{bad}}}$", gold, lang, "multi-part", False)
    for i, (gold, right, wrong) in enumerate(PLAIN_ITEMS):
        for k, lang in enumerate((CODES[i % len(CODES)], CODES[(i + 5) % len(CODES)])):
            pred = right if k == 0 else wrong
            add(f"{_cue(lang)} {pred}.", gold, lang, "plain after cue", k == 0)
    return out


def number_cases(rng: random.Random) -> list[Case]:
    out: list[Case] = []

    def add(text: str, gold: str, lang: str, form: str, correct: bool, step: bool = True) -> None:
        body = f"{REASONING[lang]} {_step(lang, rng)}" if step else REASONING[lang]
        out.append(Case(f"{body}\n\n{text}", gold, lang, "number", form, correct))

    for lang in CODES:
        cue, or_word = _cue(lang), LANGUAGES[lang].or_words[0]
        for right in (True, False):
            value = rng.choice([18, 45, 125, 1250, 70000, 2125])
            shown = value if right else value + rng.choice([1, 10, -1])
            local = _local(shown, lang, rng)
            add(f"\\boxed{{{local}}}", str(value), lang, "boxed", right)
            add(f"{cue} {local}.", str(value), lang, "cue", right)
            add(f"= {local}", str(value), lang, "last number", right)
            add(f"{cue} {3 if right else 5}/4.", "0.75", lang, "fraction", right)
            add(f"{cue} $\\frac{{{3 if right else 5}}}{{4}}$.", "0.75", lang, "LaTeX", right)
            add(f"$\\boxed{{{value - 3 if right else value}}}$ {RECHECK[lang]} $\\boxed{{{shown}}}$", str(value), lang,
                "revised", right)
        add(f"{cue} $\\sqrt{{3}}$.", "3", lang, "LaTeX", False)  # the 3 of \sqrt{3} is not the answer
        add(f"{cue} $\\frac{{1}}{{3}}$.", "3", lang, "LaTeX", False)
        add(f"{cue} 3 {or_word} 5.", "3", lang, "hedged", False)
        add(f"\\boxed{{3}} {or_word} \\boxed{{5}}", "5", lang, "hedged", False)
        add("\\boxed{25\\%}", "25", lang, "units/percent", True)
        add(f"\\boxed{{\\${18 if lang != 'te' else 19}}}", "18", lang, "units/percent", lang != "te")
        add("\\boxed{0.25}", "25%", lang, "units/percent", True)
        if LANGUAGES[lang].decimal_comma:
            add("\\boxed{1.5}", "1,5", lang, "decimal-comma gold", True)
            add(f"{cue} 1,5.", "1,5", lang, "decimal-comma gold", True)
            add(f"{cue} 1,05.", "1,5", lang, "decimal-comma gold", False)
    return out


def choice_cases(rng: random.Random) -> list[Case]:
    out: list[Case] = []

    def add(text: str, gold: str, lang: str, form: str, correct: bool) -> None:
        out.append(Case(f"{REASONING[lang]}\n\n{text}", gold, lang, "choice", form, correct))

    for i, lang in enumerate(CODES):
        cue, or_word = _cue(lang), LANGUAGES[lang].or_words[0]
        gold = "ABCD"[i % 4]
        other = "ABCD"[(i + 1) % 4]
        for letter in (gold, other):
            right = letter == gold
            add(f"$\\boxed{{{letter}}}$", gold, lang, "boxed", right)
            add([f"{cue} ({letter}).", f"{cue} **{letter}**", f"{cue} {letter}."][i % 3], gold, lang, "cue", right)
            add([f"**{letter}**", f"({letter})", f"{letter}."][(i + 1) % 3], gold, lang, "last line", right)
            first = other if right else gold
            add(f"{cue} {first}? {RECHECK[lang]} {cue} ({letter}).", gold, lang, "last cue wins", right)
        add(f"{cue} {gold} {or_word} {other}.", gold, lang, "hedged", False)
        add(f"{cue} ({other}) {or_word} ({gold}).", gold, lang, "hedged", False)
    for text, gold, lang, right in [("The correct answer is C", "C", "en", True), ("The correct answer is B", "C", "en", False),
                                    ("La bonne réponse est C.", "C", "fr", True), ("答案是 B", "B", "zh", True),
                                    ("Die richtige Antwort ist D.", "D", "de", True), ("正解は A です。", "A", "ja", True),
                                    ("La respuesta correcta es (B).", "C", "es", False)]:
        add(text, gold, lang, "cue", right)
    return out


# Forms the grader was not written against (labelled before xling graded them): checks after the
# answer, words, option text, phrasing without a cue. Where both graders miss, both miss.
OTHER: list[tuple[str, str, str, str, bool]] = [
    ("So $x = 3$ is the solution. Check: $3^2 - 9 = 0$.", "3", "en", "math", True),
    ("The roots are $x=2$ and $x=-2$, so the positive root is $2$.", "2", "en", "math", True),
    ("Therefore the area is $\\frac{25\\sqrt{3}}{4}$ square units.", "\\frac{25\\sqrt3}{4}", "en", "math", True),
    ("Par conséquent, $a + b = \\boxed{17}$, ce qui vérifie l'équation.", "17", "fr", "math", True),
    ("最后得到 $m = \\frac{5}{2}$，经检验符合题意。", "\\frac52", "zh", "math", True),
    ("Die Lösung ist $x = 4$, denn $2 \\cdot 4 = 8$.", "4", "de", "math", True),
    ("The final answer is $\\boxed{5}$. I hope it is correct.", "5", "en", "math", True),
    ("Thus the probability is $\\frac{1}{6}$, i.e. about $0.17$.", "\\frac16", "en", "math", True),
    ("So she has 42 apples left, which is forty-two.", "42", "en", "number", True),
    ("She earns $24 per day. Let me double check: 12 × 2 = 24.", "24", "en", "number", True),
    ("Всего он заплатил 1 250 рублей, то есть по 250 рублей за каждый из 5 дней.", "1250", "ru", "number", True),
    ("Sie bekommt 3,50 € pro Stunde, also 28 € für 8 Stunden.", "28", "de", "number", True),
    ("答えは12個で、1人あたり3個です。", "12", "ja", "number", True),
    ("The answer is forty-two.", "42", "en", "number", True),
    ("So the total is 17. That is 3 more than last week's 14.", "17", "en", "number", True),
    ("Option C is correct.", "C", "en", "choice", True),
    ("I'd go with B.", "B", "en", "choice", True),
    ("The answer is (C) 42 m/s.", "C", "en", "choice", True),
    ("Ni wazi kwamba jibu ni D, si A.", "D", "sw", "choice", True),
    ("A and C are wrong, so the answer is B.", "B", "en", "choice", True),
    ("Die Antwort ist nicht A; richtig ist C.", "C", "de", "choice", True),
]


def other_cases() -> list[Case]:
    return [Case(f"{REASONING[lang]} {text}", gold, lang, kind, "other (not written for)", right)
            for text, gold, lang, kind, right in OTHER]


def cases(seed: int = 0) -> list[Case]:
    """The labelled set, in a fixed order."""
    rng = random.Random(seed)
    return math_cases(rng) + number_cases(rng) + choice_cases(rng) + other_cases()


def _math_verify_direct() -> Callable[[Case], bool]:
    import logging

    from math_verify import StringExtractionConfig, parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    letters = [StringExtractionConfig(strings=tuple("ABCDEFGHIJ"))]

    def judge(case: Case) -> bool:
        if case.kind == "choice":
            return bool(verify(parse(case.gold, letters), parse(case.completion, letters)))
        gold = case.gold if "$" in case.gold or "\\boxed" in case.gold else f"${case.gold}$"
        return bool(verify(parse(gold), parse(case.completion)))

    return judge


def accuracy(labelled: list[Case], workers: int = 0) -> dict:
    """Per kind and per (kind, form): n, and for "xling" and "math-verify" the agreements with the
    labels, the wrong answers marked right (generous) and the right ones marked wrong (strict)."""
    from xling.grading.answers import Grader

    with Grader(workers=workers) as grader:
        t0 = time.perf_counter()
        results = grader.grade_batch([c.completion for c in labelled], [c.gold for c in labelled],
                                     [c.lang for c in labelled], [c.kind for c in labelled])
        xling_s = time.perf_counter() - t0
    judge = _math_verify_direct()
    t0 = time.perf_counter()
    direct = [judge(c) for c in labelled]
    direct_s = time.perf_counter() - t0
    table: dict = defaultdict(lambda: {"n": 0, "xling": [0, 0, 0], "math-verify": [0, 0, 0]})
    for case, mine, theirs in zip(labelled, results, direct):
        for key in (case.kind, f"{case.kind} / {case.form}"):
            row = table[key]
            row["n"] += 1
            for name, verdict in (("xling", mine.correct), ("math-verify", theirs)):
                row[name][0] += verdict == case.correct
                row[name][1] += verdict and not case.correct
                row[name][2] += case.correct and not verdict
    rows = {key: {"n": r["n"], **{name: dict(zip(("agree", "generous", "strict"), r[name])) for name in ("xling", "math-verify")}}
            for key, r in table.items()}
    disagreements = [(c, r.extracted) for c, r in zip(labelled, results) if r.correct != c.correct]
    return {"rows": rows, "seconds": {"xling": xling_s, "math-verify": direct_s}, "xling_misses": disagreements}


__all__ = ["Case", "cases", "accuracy"]
