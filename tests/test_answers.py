"""The one grader: extraction and verification in 11 languages, number parsing, the timeout path."""

from __future__ import annotations

import os
import threading
import time
from fractions import Fraction

import pytest

from xling.grading.answers import (
    TIMEOUT, UNPARSEABLE_GOLD, Grader, WorkerPool, boxes, extract, format_value, grade, grade_batch,
    last_boxed, normalize_digits, number_tokens, parse_choice, parse_number,
)
from xling.common.errors import XlingError
from xling.data.languages import CODES

NNBSP = "\u202f"

# (completion, gold, lang, kind, correct, extracted) -- extracted "?" is not checked.
CASES = [
    # ---- number kind (MGSM, MSVAMP) ----
    ("She sells 9 eggs at $2 each, so she makes 9 * 2 = 18 dollars.\n\\boxed{18}", "18", "en", "number", True, "18"),
    ("So the profit is 200,000 - 130,000 = 70,000. The answer is 70,000.", "70000", "en", "number", True, "70,000"),
    ("\\boxed{70,000}", "70,000", "en", "number", True, "70,000"),
    ("He pays 1,000 in total and gets 234.5 back, so he keeps 1,234.5", "1234.5", "en", "number", True, "1,234.5"),
    ("First I got \\boxed{12}, but I forgot the last bag: \\boxed{14}", "14", "en", "number", True, "14"),
    ("First I got \\boxed{12}, but I forgot the last bag: \\boxed{14}", "12", "en", "number", False, "14"),
    ("The change is \\boxed{-5}", "-5", "en", "number", True, "-5"),
    ("It got colder by 5 degrees. Final answer: −5", "-5", "en", "number", True, "-5"),
    ("\\boxed{\\$18.00}", "18", "en", "number", True, "\\$18.00"),
    ("\\boxed{18 \\text{ eggs}}", "18", "en", "number", True, "18 \\text{ eggs}"),
    ("The discount is \\boxed{25\\%}", "25", "en", "number", True, "25\\%"),
    ("I am not sure how to solve this one.", "5", "en", "number", False, None),
    ("\\boxed{8.0}", "8", "en", "number", True, "8.0"),
    ("\\boxed{8}", "8.0", "en", "number", True, "8"),
    ("Half of fifteen: \\boxed{\\frac{15}{2}}", "7.5", "en", "number", True, "?"),
    ("\\boxed{2 \\times 9 = 18}", "18", "en", "number", True, "?"),
    ("Three out of four, so the answer is 3/4 of the cake.", "0.75", "en", "number", True, "3/4"),
    ("\\fbox{42}", "42", "en", "number", True, "42"),
    ("So we get $\\boxed 42$.", "42", "en", "number", True, "42"),
    ("First guess \\boxed{3}. Final: \\boxed{4", "4", "en", "number", False, "3"),
    ("Put the answer in \\boxed{}. The answer is 9.", "9", "en", "number", True, "9"),
    ("**Answer:** **27** apples", "27", "en", "number", True, "27"),
    ("The answer is 1,234", "1234", "en", "number", True, "1,234"),
    ("He has 1.5 liters left. The answer is 1.5", "1.5", "en", "number", True, "1.5"),
    ("La respuesta es 1.250.", "1250", "es", "number", True, "1.250"),
    ("Entonces el precio es 3,5 euros. \\boxed{3,5}", "3.5", "es", "number", True, "3,5"),
    ("\\boxed{1.234,5}", "1234.5", "es", "number", True, "1.234,5"),
    ("La respuesta final es: **42**", "42", "es", "number", True, "42"),
    ("Le quedan 1,5 kilos de harina.", "1.5", "es", "number", True, "1,5"),
    ("Ответ: 70 000 рублей.", "70000", "ru", "number", True, "70 000"),
    ("\\boxed{2,5}", "2.5", "ru", "number", True, "2,5"),
    ("Окончательный ответ: −12", "-12", "ru", "number", True, "-12"),
    ("Ответ — 15.", "15", "ru", "number", True, "15"),
    ("Ответ: 16.", "15", "ru", "number", False, "16"),
    ("Die Antwort lautet 70.000 Euro.", "70000", "de", "number", True, "70.000"),
    ("\\boxed{3,75}", "3.75", "de", "number", True, "3,75"),
    ("Er zahlt 1.500,50 Euro. \\boxed{1.500,50}", "1500.5", "de", "number", True, "1.500,50"),
    ("Antwort: 12", "12", "de", "number", True, "12"),
    ("\\boxed{70.000}", "70", "de", "number", True, "70.000"),  # ambiguous: read both ways
    ("Also bleiben 2,125 Liter übrig. \\boxed{2,125}", "2.125", "de", "number", True, "2,125"),
    ("La réponse est 70 000 €.", "70000", "fr", "number", True, "70 000"),
    (f"\\boxed{{70{NNBSP}000}}", "70000", "fr", "number", True, f"70{NNBSP}000"),
    ("La réponse finale est 2,5 kg", "2.5", "fr", "number", True, "2,5"),
    ("Réponse : 9", "9", "fr", "number", True, "9"),
    ("\\boxed{12,5 \\%}", "12.5", "fr", "number", True, "12,5 \\%"),
    ("উত্তর হল ১৮", "18", "bn", "number", True, "18"),
    ("\\boxed{৭০,০০০}", "70000", "bn", "number", True, "৭০,০০০"),
    ("তাই সে মোট ৪৫টি ডিম বিক্রি করে।", "45", "bn", "number", True, "45"),
    ("চূড়ান্ত উত্তর: ২৫", "25", "bn", "number", True, "25"),
    ("উত্তর হল ২৬", "25", "bn", "number", False, "26"),
    ("คำตอบคือ ๖๐", "60", "th", "number", True, "60"),
    ("ดังนั้นเธอได้เงิน 1,250 บาท", "1250", "th", "number", True, "1,250"),
    ("คำตอบสุดท้ายคือ \\boxed{๑๒}", "12", "th", "number", True, "๑๒"),
    ("คำตอบ: 7", "8", "th", "number", False, "7"),
    ("Jibu ni 32.", "32", "sw", "number", True, "32"),
    ("Jibu la mwisho ni shilingi 1,500.", "1500", "sw", "number", True, "1,500"),
    ("\\boxed{12}", "21", "sw", "number", False, "12"),
    ("సమాధానం: 100", "100", "te", "number", True, "100"),
    ("మొత్తం ఖర్చు \\boxed{1,250} రూపాయలు", "1250", "te", "number", True, "1,250"),
    ("ప్రతి గంటకు 2.5 కిలోమీటర్లు, కాబట్టి సమాధానం 2.5", "2.5", "te", "number", True, "2.5"),
    ("Kila mtoto anapata lita 0.75, kwa hiyo jibu ni 0.75", "0.75", "sw", "number", True, "0.75"),
    ("ดังนั้นคำตอบคือ 12.5 กิโลกรัม", "12.5", "th", "number", True, "12.5"),
    ("উত্তর হল ২.৫ লিটার", "2.5", "bn", "number", True, "2.5"),
    ("答え：2.5時間", "2.5", "ja", "number", True, "2.5"),
    ("答案是 1,200,000 元", "1200000", "zh", "number", True, "1,200,000"),
    ("\\boxed{౧౨}", "12", "te", "number", True, "౧౨"),
    ("జవాబు 45 రూపాయలు", "45", "te", "number", True, "45"),
    ("答案是 45。", "45", "zh", "number", True, "45"),
    ("所以他一共赚了７万元。", "70000", "zh", "number", True, "7万"),
    ("最终答案是 \\boxed{１８}", "18", "zh", "number", True, "１８"),
    ("答案：3.5", "3.5", "zh", "number", True, "3.5"),
    ("答えは12個です。", "12", "ja", "number", True, "12"),
    ("答え：８万円", "80000", "ja", "number", True, "8万"),
    ("\\boxed{13}", "12", "ja", "number", False, "13"),
    ("最終的な答えは 2,125 です", "2,125", "ja", "number", True, "2,125"),
    ("\\boxed{5}", "five", "en", "number", False, "5"),  # unparseable gold
    ("\\boxed{5}", "", "de", "number", False, "5"),
    ("\\boxed{5}", None, "fr", "number", False, "5"),
    # ---- math kind (MATH500, AIME): math-verify, gold first ----
    ("So $x = \\boxed{\\frac{1}{3}}$.", "\\frac{1}{3}", "en", "math", True, "\\frac{1}{3}"),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}", "en", "math", True, "\\frac{\\sqrt{3}}{2}"),
    ("\\boxed{\\dfrac{2}{4}}", "\\frac12", "en", "math", True, "\\dfrac{2}{4}"),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", "en", "math", True, "2\\sqrt{2}"),
    ("\\boxed{(-\\infty, 2]}", "(-\\infty, 2]", "en", "math", True, "(-\\infty, 2]"),
    ("\\boxed{(-\\infty, 2)}", "(-\\infty, 2]", "en", "math", False, "(-\\infty, 2)"),
    ("\\boxed{10\\%}", "10\\%", "en", "math", True, "10\\%"),
    ("\\boxed{x = 5}", "5", "en", "math", True, "x = 5"),
    ("\\boxed{3, 5}", "5, 3", "en", "math", True, "3, 5"),
    ("\\boxed{\\frac{\\pi}{2}}", "\\frac{\\pi}{2}", "en", "math", True, "\\frac{\\pi}{2}"),
    ("\\boxed{\\frac{1}{2}}", "0.5", "en", "math", True, "\\frac{1}{2}"),
    ("\\boxed{0.5}", "\\frac{1}{2}", "en", "math", True, "0.5"),
    ("\\boxed{\\frac{1}{2}} no, wait: \\boxed{\\frac{1}{3}}", "\\frac13", "en", "math", True, "\\frac{1}{3}"),
    ("Adding the two parts, the total is 17", "17", "en", "math", True, "17"),
    ("I give up.", "3", "en", "math", False, None),
    ("\\boxed{1000}", "1,000", "en", "math", True, "1000"),
    ("\\boxed{(1,2)}", "(1,2)", "en", "math", True, "(1,2)"),
    ("\\boxed{5}", "", "en", "math", False, "5"),  # unparseable gold
    ("\\boxed{5}", "\\boxed{", "en", "math", False, "5"),
    ("La respuesta es $\\frac{3}{4}$.", "\\frac{3}{4}", "es", "math", True, "\\frac{3}{4}"),
    ("Die Antwort lautet $\\sqrt{2}$.", "\\sqrt{2}", "de", "math", True, "\\sqrt{2}"),
    ("\\boxed{70.000}", "70000", "de", "math", True, "70.000"),
    ("Ответ: $x = -3$", "-3", "ru", "math", True, "x = -3"),
    ("\\boxed{\\frac{5}{6}}", "\\frac{6}{5}", "fr", "math", False, "\\frac{5}{6}"),
    ("\\boxed{\\frac{১}{২}}", "\\frac{1}{2}", "bn", "math", True, "\\frac{১}{২}"),
    ("คำตอบคือ $\\frac{๓}{๔}$", "0.75", "th", "math", True, "\\frac{๓}{๔}"),
    ("Jibu ni $\\frac{2}{3}$", "\\frac{2}{3}", "sw", "math", True, "\\frac{2}{3}"),
    ("\\boxed{\\sqrt{౨}}", "\\sqrt{2}", "te", "math", True, "\\sqrt{౨}"),
    ("答案是 $\\frac{1}{4}$", "\\frac14", "zh", "math", True, "\\frac{1}{4}"),
    ("答えは $2\\sqrt{3}$ です", "2\\sqrt{3}", "ja", "math", True, "2\\sqrt{3}"),
    # ---- choice kind (GPQA) ----
    ("\\boxed{C}", "C", "en", "choice", True, "C"),
    ("\\boxed{(B)}", "B", "en", "choice", True, "(B)"),
    ("Only this keeps the charge balanced. The answer is (D).", "D", "en", "choice", True, "D"),
    ("\\boxed{\\text{A}}", "(A)", "en", "choice", True, "\\text{A}"),
    ("\\boxed{B}", "C", "en", "choice", False, "B"),
    ("I think it is one of (A) or (B).", "C", "en", "choice", False, None),
    ("\\boxed{E}", "E", "en", "choice", True, "E"),
    ("The answer is: I believe it is (B).", "B", "en", "choice", True, "B"),  # "I" is a word here
    ("The answer is A since it balances.", "A", "en", "choice", True, "A"),
    ("\\boxed{A}", "Z", "en", "choice", False, "A"),  # unparseable gold
    ("\\boxed{c}", "C", "es", "choice", True, "c"),
    ("Ответ: C", "C", "ru", "choice", True, "C"),
    ("Die Antwort lautet B.", "B", "de", "choice", True, "B"),
    ("La réponse est (A).", "A", "fr", "choice", True, "A"),
    ("উত্তর হল A", "A", "bn", "choice", True, "A"),
    ("คำตอบคือ B", "B", "th", "choice", True, "B"),
    ("Jibu ni (B)", "B", "sw", "choice", True, "B"),
    ("答案是 C", "C", "zh", "choice", True, "C"),
    ("答え：D", "D", "ja", "choice", True, "D"),
    ("సమాధానం (A)", "A", "te", "choice", True, "A"),
]
UNPARSEABLE = {("\\boxed{5}", "five"), ("\\boxed{5}", ""), ("\\boxed{5}", None), ("\\boxed{5}", "\\boxed{"),
               ("\\boxed{A}", "Z")}


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=2, timeout=10) as g:
        yield g


def test_the_table_is_large_and_covers_every_language_and_kind():
    assert len(CASES) >= 100
    assert {c[2] for c in CASES} == set(CODES)
    for kind in ("number", "math", "choice"):
        assert {c[2] for c in CASES if c[3] == kind} >= ({"en"} if kind != "number" else set(CODES))


@pytest.mark.parametrize("completion,gold,lang,kind,correct,extracted", CASES)
def test_grade_cases(grader, completion, gold, lang, kind, correct, extracted):
    result = grader.grade(completion, gold, lang, kind)
    assert result.correct is correct, result
    if extracted != "?":
        assert result.extracted == extracted, result
    if (completion, gold) in UNPARSEABLE:
        assert result.error == UNPARSEABLE_GOLD
    else:
        assert result.error is None, result


def test_batch_grading_equals_single_grading(grader):
    completions, golds, langs, kinds = (list(x) for x in zip(*[(c[0], c[1], c[2], c[3]) for c in CASES]))
    single = [grader.grade(*args) for args in zip(completions, golds, langs, kinds)]
    assert grader.grade_batch(completions, golds, langs, kinds) == single
    with Grader(workers=2, parallel_min=8) as spread:  # extraction in the workers as well
        assert spread.grade_batch(completions, golds, langs, kinds) == single
        assert spread.stats["graded"] == len(CASES) and spread.stats[UNPARSEABLE_GOLD] == sum((c[0], c[1]) in UNPARSEABLE for c in CASES)


def test_module_level_grade_uses_a_shared_grader():
    assert grade("\\boxed{18}", "18", "en", "number").correct
    assert [r.correct for r in grade_batch(["\\boxed{1}", "\\boxed{2}"], ["1", "1"], "en", "number")] == [True, False]


@pytest.mark.parametrize("text,decimal_comma,first,values", [
    ("70,000", False, "70000", {70000}),  # en: ',' only groups
    ("2,000", False, "2000", {2000}),
    ("70.000", True, "70000", {70000, 70}),  # de: '.' groups, but English habits are common
    ("70.000", False, "70", {70}),  # en: '.' is only a decimal point
    ("1,234", True, "617/500", {1234, Fraction(617, 500)}),
    ("1,5", False, "3/2", {Fraction(3, 2)}),
    ("0,750", True, "3/4", {Fraction(3, 4)}),
    ("70 000", True, "70000", {70000}),
    ("70'000", False, "70000", {70000}),
    ("1,234,567", True, "1234567", {1234567}),
    ("1.234.567,89", True, "123456789/100", {Fraction(123456789, 100)}),
    ("$1,234.56", False, "3086400/2500", {Fraction(123456, 100)}),
    ("−7", False, "-7", {-7}),
    ("3/4", False, "3/4", {Fraction(3, 4)}),
    ("5万", False, "50000", {50000}),
    ("40%", False, "40", {40, Fraction(2, 5)}),
])
def test_number_readings(text, decimal_comma, first, values):
    (_, readings), = number_tokens(text, decimal_comma)
    assert readings[0] == Fraction(first)
    assert set(readings) == values


def test_number_boundaries():
    assert [t for t, _ in number_tokens("x2 and 5-3 = 2, then 12.03.2024")] == ["5", "3", "2", "12.03"]
    assert [t for t, _ in number_tokens("(-4) and -4 and a-4")] == ["-4", "-4", "4"]
    assert number_tokens("no digits here") == []


def test_parse_number_whole_text():
    assert parse_number("70{,}000") == [70000]
    assert parse_number("70{,}000", decimal_comma=True) == [70, 70000]
    assert parse_number("\\frac{3}{4}") == [Fraction(3, 4)]
    assert parse_number("\\$18") == [18]
    assert parse_number("x = 5") is None
    assert parse_number("five") is None
    assert parse_number("") is None


def test_format_value():
    assert [format_value(Fraction(v)) for v in ("70000", "2.5", "-0.125", "1/3", "-7")] == ["70000", "2.5", "-0.125", "1/3", "-7"]


def test_native_and_full_width_digits():
    assert normalize_digits("০১২৩৪৫৬৭৮৯ ๐๑๒๓๔๕๖๗๘๙ ౦౧౨౩౪౫౬౭౮౯ ０１２３") == "0123456789 0123456789 0123456789 0123"
    assert normalize_digits("−５％") == "-5%"


def test_boxes_nested_and_unclosed():
    text = "\\boxed{\\frac{1}{3}} then \\boxed{\\frac{\\sqrt{2}}{\\sqrt{3}}} and \\boxed{\\{1, 2\\}} and \\boxed{7"
    assert [c for _, _, c in boxes(text)] == ["\\frac{1}{3}", "\\frac{\\sqrt{2}}{\\sqrt{3}}", "\\{1, 2\\}"]
    assert last_boxed(text) == "\\{1, 2\\}"
    assert last_boxed("\\boxed{\\boxed{5}}") == "5"
    assert last_boxed("Write it as \\boxed{} please") is None
    assert last_boxed("\\fbox{12}") == "12"


def test_extraction_sources():
    assert extract("\\boxed{3}", "number").source == "boxed"
    assert extract("La respuesta es 4.", "number", "es").source == "cue"
    assert extract("we get 5 and then 6", "number", "en").source == "last_number"
    assert extract("pick (A) or (B)", "choice").text is None
    assert extract("", "math") == extract(None, "math")  # type: ignore[arg-type]


def test_choice_letters():
    assert [parse_choice(t) for t in ("C", "(c)", "\\textbf{(D)}", "B) 42", " a ", "Cat", "CD", "Z")] == \
        ["C", "C", "D", "B", "A", None, None, None]


def test_bad_kind_and_language_are_errors():
    with pytest.raises(XlingError, match="unknown answer kind 'maths'; choose one of: math, number, choice"):
        Grader(workers=0).grade("\\boxed{1}", "1", "en", "maths")
    with pytest.raises(XlingError, match="unknown language 'eng'"):
        Grader(workers=0).grade("\\boxed{1}", "1", "eng", "number")
    with pytest.raises(XlingError, match="2 completions but 1 gold answers"):
        Grader(workers=0).grade_batch(["a", "b"], ["1"])
    with pytest.raises(XlingError, match="timeout must be a number of seconds above 0 and at most 3600, not 0"):
        Grader(timeout=0)


# ---- the timeout path ----

def test_hanging_verification_is_wrong_within_the_timeout(monkeypatch):
    """A verification that never returns: the worker is killed at the timeout and another takes over."""
    import xling.grading.answers as answers
    from helpers import never_returns

    with Grader(workers=1, timeout=1.0) as g:
        g.grade("\\boxed{\\sqrt{4}}", "2")  # start the worker
        monkeypatch.setattr(answers, "verify_math", never_returns)
        result = g.grade("So the answer is \\boxed{10^{10^{10}}}", "5")
        assert result.correct is False and result.error == TIMEOUT
        assert g.stats[TIMEOUT] == 1 and g.pool.timeouts == 1
        monkeypatch.undo()
        assert g.grade("\\boxed{\\sqrt{9}}", "3").correct  # a new worker took over


def test_pool_timeout_with_a_task_that_never_ends():
    with WorkerPool(2) as pool:
        out = pool.map(time.sleep, [(0.01,), (10**6,), (0.01,), (0.01,)], timeout=0.5)
        assert out == [(None, None), (None, TIMEOUT), (None, None), (None, None)]
        assert pool.timeouts == 1 and pool.restarts == 1
        assert pool.map(abs, [(-3,)], timeout=5) == [(3, None)]


def test_pool_survives_errors_and_dying_workers():
    with WorkerPool(1) as pool:
        (value, error), = pool.map(int, [("x",)], timeout=5)
        assert value is None and error.startswith("verifier error: ValueError")
        assert pool.map(os._exit, [(3,)], timeout=5) == [(None, "verifier error: worker died")]
        assert pool.map(abs, [(-1,), (-2,)], timeout=5) == [(1, None), (2, None)]


def warmed_grader(timeout: float) -> Grader:
    """An in-process grader whose first check (imports of math-verify and sympy) is done."""
    g = Grader(workers=0, timeout=timeout)
    assert g.grade("\\boxed{\\sqrt{4}}", "2").correct
    return g


def busy_forever(*args, **kwargs):
    while True:
        pass


def swallowing_forever(*args, **kwargs):
    """As math-verify does with its comparisons: every exception caught, its own timeout too, and on."""
    from math_verify.errors import TimeoutException

    while True:
        try:
            time.sleep(3600)
        except Exception:
            pass
        except TimeoutException:
            pass


def waiting_forever(*args, **kwargs):
    threading.Event().wait()  # a lock that nobody releases


# Hangs that no machine can finish, however fast: math-verify's comparison replaced by each in turn.
# (Real inputs such as nested roots ran past the timeout on a busy machine only.)
HANGS = {"busy loop": busy_forever, "swallows every exception": swallowing_forever, "blocked on a lock": waiting_forever}


@pytest.mark.parametrize("hang", list(HANGS.values()), ids=list(HANGS))
def test_in_process_timeout_is_hard_on_hostile_items(monkeypatch, hang):
    import math_verify

    g = warmed_grader(0.5)
    monkeypatch.setattr(math_verify, "verify", hang)
    result = g.grade("\\boxed{\\sqrt{25}}", "5")
    assert result.correct is False and result.error == TIMEOUT, result
    assert g.stats[TIMEOUT] == 1
    monkeypatch.undo()
    assert g.grade("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}").correct  # and the grader goes on


def test_in_process_timeout_is_hard_when_the_verifier_swallows_every_exception(monkeypatch):
    """math-verify catches what its comparisons raise and goes on with the next pair (grader.py:
    `except Exception as e:` ... `except TimeoutException as e:` ... `return False`); a verifier that
    swallows both, for ever, must still be stopped at the timeout, at its first try."""
    from math_verify.errors import TimeoutException

    import xling.grading.verify as verify

    verify._warm_up()
    calls = []

    def stubborn(gold, prediction):
        while True:
            try:
                calls.append(1)
                time.sleep(3600)
            except Exception:
                pass
            except TimeoutException:
                pass

    monkeypatch.setattr(verify, "verify_math", stubborn)
    assert verify.verify_with_alarm("5", "x", 0.3) == (False, TIMEOUT)
    assert calls == [1]


def test_the_callers_alarm_handler_and_timer_are_restored():
    import signal

    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 3000)
        g = warmed_grader(5)
        assert g.grade("\\boxed{\\frac{2}{4}}", "\\frac12").correct
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining < 3000 and fired == []  # the caller's timer is still running, less what passed
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        while not fired:  # its own handler gets the alarm
            time.sleep(0.01)
        assert fired == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_in_process_grading_off_the_main_thread_has_a_hard_timeout_too(monkeypatch):
    import xling.grading.answers as answers
    from helpers import never_returns

    out = {}

    def run():
        with Grader(workers=0, timeout=1.0) as g:
            answers.verify_math, real = never_returns, answers.verify_math
            try:
                out["hostile"] = g.grade("\\boxed{\\sqrt{25}}", "5")
            finally:
                answers.verify_math = real
            out["fine"] = g.grade("\\boxed{\\sqrt{9}}", "3")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert out["hostile"].error == TIMEOUT
    assert out["fine"].correct


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -float("inf"), 1e9, 3600.5, 0, -1, "5", None, True])
def test_a_timeout_must_be_a_finite_number_of_seconds(timeout):
    with pytest.raises(XlingError, match=r"^the verification timeout must be a number of seconds"):
        Grader(timeout=timeout)


def test_a_pool_refuses_a_timeout_that_is_not_finite():
    with WorkerPool(1) as pool:
        for bad in (float("nan"), float("inf"), 0):
            with pytest.raises(XlingError, match="a worker pool's timeout must be a positive, finite number"):
                pool.map(abs, [(-1,)], timeout=bad)
        assert pool.map(abs, [(-1,)], timeout=3600 * 24 * 365) == [(1, None)]  # long waits do not overflow


def test_pool_needs_a_worker():
    with pytest.raises(XlingError, match="at least 1 worker"):
        WorkerPool(0)


def test_degenerate_completions_grade_in_linear_time():
    """RL policies produce loops; extraction must stay linear in the completion's length. Graded in a
    worker with a timeout a hundred times what they take (a quadratic or worse extraction takes far
    longer on these lengths)."""
    texts = ("\\boxed{1 " * 3000, "\\boxed{" * 3000 + "5" + "}" * 3000, "The answer is " * 3000, "1," * 10000)
    from helpers import grade_number

    with WorkerPool(1) as pool:
        out = pool.map(grade_number, [(t,) for t in texts], timeout=300)
    assert [error for _, error in out] == [None] * 4
    assert all(result.extracted is None or len(result.extracted) < 50_000 for result, _ in out)


def test_degenerate_digit_runs_are_no_answer_and_never_crash():
    for completion in ("so the total is " + "9" * 5000, "x = 0." + "3" * 5000, "\\boxed{" + "1" * 5000 + "}"):
        for kind in ("number", "math"):
            result = grade(completion, "5", "en", kind, grader=Grader(workers=0))
            assert result.correct is False


@pytest.mark.parametrize("completion,gold,lang,correct", [
    ("\\boxed{2,000}", "2", "en", False),  # an English thousands comma is never a decimal point
    ("\\boxed{1,500}", "1.5", "en", False),
    ("\\boxed{2,000}", "2000", "en", True),
    ("\\boxed{2.000}", "2000", "de", True),
    ("\\boxed{15 \\text{ m}^2}", "15", "en", True),  # a unit's power is not the answer
])
def test_separator_conventions_and_units(completion, gold, lang, correct):
    assert grade(completion, gold, lang, "number", grader=Grader(workers=0)).correct is correct


@pytest.mark.parametrize("gold", ["???", "\\frac{", "\\boxed{"])
def test_malformed_math_gold_is_unparseable_not_a_string_match(gold):
    """math-verify falls back to the raw string when it cannot parse; such a gold is unparseable,
    so that `\\boxed{???}` does not match gold `???`."""
    result = Grader(workers=0).grade(f"\\boxed{{{gold}}}", gold, "en", "math")
    assert result.correct is False and result.error == UNPARSEABLE_GOLD


def test_a_worker_whose_caller_is_gone_stops_quietly():
    """After a SIGKILL of the grading process its workers' answers meet a closed pipe: they stop, no traceback."""
    from xling.grading.workers import _serve

    class Gone:
        sent = 0

        def __init__(self):
            self.messages = [(abs, [(-1,)])]

        def recv(self):
            if not self.messages:
                raise EOFError
            return self.messages.pop()

        def send(self, out):
            self.sent += 1
            raise BrokenPipeError(32, "Broken pipe")

    conn = Gone()
    assert _serve(conn) is None and conn.sent == 1
