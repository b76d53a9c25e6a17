"""What counts as the final answer: unboxed LaTeX, fractions before a full stop, box groups (parts,
hedges, revisions), final statements after a box, option letters, gold numbers — in several
languages, each with answers that must be right and answers that must be wrong."""

from __future__ import annotations

import pytest

from xling.grading.answers import HEDGE, Grader, gold_numbers
from xling.grading.extraction import extract, gap_kind
from xling.data.languages import CODES, LANGUAGES


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=0, timeout=10) as g:
        yield g


def check(grader, completion, gold, lang, kind, correct, extracted="?"):
    result = grader.grade(completion, gold, lang, kind)
    assert result.correct is correct, (completion, gold, result)
    if extracted != "?":
        assert result.extracted == extracted, (completion, result)
    assert result.error is None, result


# ---- 1. unboxed LaTeX: the last LaTeX expression or cue clause, parsed as math-verify would ----

@pytest.mark.parametrize("completion,gold,lang,correct,extracted", [
    ("So we get $x = \\dfrac{1}{3}$.", "\\frac{1}{3}", "en", True, "x = \\dfrac{1}{3}"),
    ("So we get $x = \\dfrac{1}{3}$.", "\\frac{1}{4}", "en", False, "x = \\dfrac{1}{3}"),
    ("Donc on obtient $x = \\dfrac{1}{3}$.", "\\frac{1}{3}", "fr", True, "x = \\dfrac{1}{3}"),
    ("Also gilt $x \\leq 3$.", "x \\le 3", "de", True, "x \\leq 3"),
    ("Also gilt $x < 3$.", "x \\le 3", "de", False, "x < 3"),
    ("Por lo tanto el punto es $(2, -1)$.", "(2,-1)", "es", True, "(2, -1)"),
    ("Por lo tanto el punto es $(-1, 2)$.", "(2,-1)", "es", False, "(-1, 2)"),
    ("Ответ лежит в промежутке \\([2, 5)\\).", "[2,5)", "ru", True, "[2, 5)"),
    ("Ответ лежит в промежутке \\([2, 5]\\).", "[2,5)", "ru", False, "[2, 5]"),
    ("所以边长是 $2\\sqrt{3}$。", "\\sqrt{12}", "zh", True, "2\\sqrt{3}"),
    ("所以边长是 $3\\sqrt{2}$。", "\\sqrt{12}", "zh", False, "3\\sqrt{2}"),
    ("Thus\n\\[\n\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}\n\\]", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "en", True, "?"),
    ("Thus\n\\[\n\\begin{pmatrix} 1 & 2 \\\\ 4 & 3 \\end{pmatrix}\n\\]", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "en", False, "?"),
    ("電車は 12:00 に着きます。", "12:00", "ja", True, "12:00"),
    ("電車は 12:30 に着きます。", "12:00", "ja", False, "12:30"),
    ("The meeting starts at 7:30 pm.", "19:30", "en", True, "7:30 pm"),
    ("So the value is $.4$", "0.4", "en", True, ".4"),
    ("So the value is $.4$", "4", "en", False, ".4"),
    ("Jibu ni \\frac13.", "\\frac{1}{3}", "sw", True, "\\frac13"),
    ("Jibu ni \\frac13.", "13", "sw", False, "\\frac13"),
    ("The answer is (C).", "\\text{(C)}", "en", True, "(C)"),
    ("The answer is (B).", "\\text{(C)}", "en", False, "(B)"),
    ("Damit ist $f(x) = 2x + 1$.", "2x+1", "de", True, "f(x) = 2x + 1"),
    ("Damit ist $f(x) = 2x - 1$.", "2x+1", "de", False, "f(x) = 2x - 1"),
    ("The answer is x = 5.", "5", "en", True, "x = 5"),
    ("The answer is 2x + 1.", "2x+1", "en", True, "2x + 1"),
])
def test_unboxed_latex_is_the_answer(grader, completion, gold, lang, correct, extracted):
    check(grader, completion, gold, lang, "math", correct, extracted)


@pytest.mark.parametrize("completion,gold,lang,correct", [
    ("So the side is $\\sqrt{3}$.", "3", "en", False),  # not the 3 of \sqrt{3}
    ("So each gets \\frac{1}{3} of the pie.", "3", "en", False),  # nor the 3 of \frac{1}{3}
    ("So each gets \\frac{1}{3} of the pie.", "1", "en", False),
    ("Jeder bekommt \\frac{1}{3} vom Kuchen.", "0.333333333", "de", True),
    ("La longitud es 2\\sqrt{3}.", "2", "es", False),
    ("\\boxed{\\sqrt{3}}", "3", "fr", False),
    ("\\boxed{10^3}", "3", "en", False),
    ("\\boxed{3 \\times 6}", "6", "en", False),  # an unfinished product is not its last factor
    ("\\boxed{2 \\times 9 = 18}", "18", "en", True),
    ("She has 3 \\times4 = 12 apples.", "12", "en", True),  # digits right after a command are seen
    ("Es kostet \\approx18 Euro.", "18", "de", True),
    ("面积是 25 m^2。", "25", "zh", True),  # a unit's power is not the answer
    ("We computed $3 \\times 4 = 12$ eggs; she sells them for 2 dollars each, earning 24 dollars.", "24", "en", True),
    ("We computed $3 \\times 4 = 12$ eggs; she sells them for 2 dollars each, earning 24 dollars.", "12", "en", False),
    ("Mwishowe tunapata $\\frac{3}{4}$ ya keki.", "0.75", "sw", True),
])
def test_digits_are_never_read_out_of_latex(grader, completion, gold, lang, correct):
    check(grader, completion, gold, lang, "number", correct)


# ---- 2. a fraction before a full stop ----

CUE_FRACTION = {lang: LANGUAGES[lang].answer_cues[0] for lang in CODES}


@pytest.mark.parametrize("lang", CODES)
@pytest.mark.parametrize("kind", ["number", "math"])
def test_a_fraction_before_a_full_stop_is_the_fraction(grader, lang, kind):
    stop = "。" if lang in ("zh", "ja") else "."
    completion = f"{CUE_FRACTION[lang].capitalize()} 3/4{stop}"
    result = grader.grade(completion, "0.75" if kind == "number" else "\\frac{3}{4}", lang, kind)
    assert result.correct and result.extracted == "3/4", result
    assert grader.grade(completion, "3", lang, kind).correct is False
    assert grader.grade(completion, "4", lang, kind).correct is False


# ---- 3. several boxes ----

@pytest.mark.parametrize("completion,gold,lang,kind,correct", [
    ("(a) $\\boxed{3}$ (b) $\\boxed{5}$", "3, 5", "en", "math", True),  # parts compared as a whole
    ("(a) $\\boxed{3}$ (b) $\\boxed{5}$", "5", "en", "math", False),
    ("(a) $\\boxed{3}$ (b) $\\boxed{5}$", "3", "en", "math", False),
    ("$x = \\boxed{2}$ und $y = \\boxed{3}$", "(2, 3)", "de", "math", True),
    ("$x = \\boxed{2}$ und $y = \\boxed{4}$", "(2, 3)", "de", "math", False),
    ("$x = \\boxed{2}$ o $x = \\boxed{5}$", "2, 5", "es", "math", True),  # two solutions, "or" as in x = 2 or x = 5
    ("$\\boxed{3}$ o $\\boxed{5}$", "3", "es", "math", False),  # a hedge for one answer
    ("\\boxed{3} oder \\boxed{5}", "3", "de", "number", False),
    ("\\boxed{3} или \\boxed{5}", "5", "ru", "number", False),
    ("\\boxed{3} 或 \\boxed{5}", "5", "zh", "number", False),
    ("\\boxed{3} หรือ \\boxed{5}", "3", "th", "number", False),
    ("\\boxed{3} and \\boxed{5}", "5", "en", "number", False),  # two numbers for one
    ("\\boxed{5} or \\boxed{5}", "5", "en", "number", True),  # the same answer twice is one answer
    ("\\boxed{B} ou \\boxed{C}", "C", "fr", "choice", False),
    ("First \\boxed{12}, but I forgot a bag. Now \\boxed{14}", "14", "en", "number", True),  # a revision
    ("So \\boxed{12} is the subtotal. Adding the rest, the final answer is 14.", "14", "en", "number", True),
    ("So \\boxed{12} is the subtotal. Adding the rest, the final answer is 14.", "12", "en", "number", False),
    ("Zwischensumme \\boxed{12}. Die richtige Antwort ist 14.", "14", "de", "number", True),
    ("小计 \\boxed{12}。答案是 14。", "14", "zh", "number", True),
    ("小计 \\boxed{12}。答案是 14。", "12", "zh", "number", False),
    ("$a = \\boxed{2}$. Therefore, the final answer is $\\frac{1}{2}$.", "\\frac12", "en", "math", True),
    ("$a = \\boxed{2}$. Therefore, the final answer is $\\frac{1}{2}$.", "2", "en", "math", False),
    ("\\boxed{A}. The correct answer is C.", "C", "en", "choice", True),
    ("\\boxed{A}. The correct answer is C.", "A", "en", "choice", False),
])
def test_several_boxes(grader, completion, gold, lang, kind, correct):
    check(grader, completion, gold, lang, kind, correct)


def test_box_groups_and_hedges_are_named():
    assert extract("(a) \\boxed{3} (b) \\boxed{5}", "math").parts == ("3", "5")
    hedge = extract("\\boxed{3} or \\boxed{5}", "number")
    assert (hedge.source, hedge.text, hedge.parts) == (HEDGE, "3 or 5", ("3", "5"))
    assert extract("\\boxed{12}, wait, \\boxed{14}", "number").text == "14"
    assert extract("\\boxed{\\boxed{5}}", "number").text == "5"
    assert [gap_kind(g) for g in (" or ", "$ and $", ", ", " (b) ", "\\quad y = ", " 或 ", ". Then ", " so ")] == \
        ["or", "and", "and", "and", "and", "or", None, None]


# ---- 4. option letters ----

CHOICE_CUES = {
    "en": "The correct answer is", "es": "La respuesta correcta es", "ru": "Правильный ответ:",
    "de": "Die richtige Antwort ist", "fr": "La bonne réponse est", "bn": "সঠিক উত্তর হল",
    "th": "คำตอบที่ถูกต้องคือ", "sw": "Jibu sahihi ni", "zh": "正确答案是", "ja": "正解は", "te": "సరైన సమాధానం",
}


@pytest.mark.parametrize("lang", CODES)
def test_option_letter_cues_in_every_language(grader, lang):
    cue = CHOICE_CUES[lang]
    for form in ("C", "(C)", "C.", "**C**", "\\textbf{C}"):
        assert grader.grade(f"{cue} {form}", "C", lang, "choice").correct, (lang, form)
        assert grader.grade(f"{cue} {form}", "B", lang, "choice").correct is False, (lang, form)
    plain = LANGUAGES[lang].answer_cues[0]
    assert grader.grade(f"{plain} B", "B", lang, "choice").correct
    or_word = LANGUAGES[lang].or_words[0]
    for gold in ("A", "B"):  # a hedge naming two letters is wrong, whichever is the gold
        result = grader.grade(f"{cue} A {or_word} B.", gold, lang, "choice")
        assert result.correct is False and result.source == HEDGE, result


@pytest.mark.parametrize("completion,gold,correct", [
    ("Let me think.\n\n**C**", "C", True),
    ("Let me think.\n\n(C)", "C", True),
    ("Let me think.\n\nC.", "C", True),
    ("Let me think.\n\nC.", "D", False),
    ("At first the answer is A seemed right, but the correct answer is C.", "C", True),  # the last cue wins
    ("At first the answer is A seemed right, but the correct answer is C.", "A", False),
    ("The answer is (B) because (A) fails.", "B", True),
    ("The answer is A or B.", "A", False),
    ("The answer is (A) or (B).", "B", False),
    ("The answer is A/B.", "A", False),
    ("The answer is: I believe it is (D).", "D", True),
    ("The answer is A since it balances.", "A", True),
    ("Die Antwort ist nicht A; richtig ist C.", "A", False),  # a negated cue names no answer
    ("I think it is one of (A) or (B).", "A", False),
])
def test_option_letter_forms(grader, completion, gold, correct):
    check(grader, completion, gold, "en" if "Antwort" not in completion else "de", "choice", correct)


# ---- 5. gold answers: decimal commas, units and percent ----

def test_gold_numbers():
    assert gold_numbers("1,22") == (pytest.approx(1.22),)
    assert gold_numbers("2,125") == (2125,)  # MGSM's own writing, in every language
    assert gold_numbers("1.234,5") == (pytest.approx(1234.5),)
    assert gold_numbers("25%") == (25, pytest.approx(0.25))
    assert gold_numbers("18 dollars") == (18,) and gold_numbers("$18") == (18,) and gold_numbers("5 km") == (5,)
    assert [gold_numbers(g) for g in ("five", "", None, "1 and 2", "3 + 4", "\\sqrt{3}")] == [None] * 6


@pytest.mark.parametrize("completion,gold,lang,kind,correct", [
    ("\\boxed{1.22}", "1,22", "de", "number", True),
    ("\\boxed{1,22}", "1,22", "es", "number", True),
    ("\\boxed{1.2}", "1,22", "fr", "number", False),
    ("\\boxed{122}", "1,22", "ru", "number", False),
    ("\\boxed{1.22}", "1,22", "de", "math", True),  # a decimal comma, not the list (1, 22)
    ("\\boxed{1,22}", "1,22", "de", "math", True),
    ("\\boxed{1.2}", "1,22", "de", "math", False),
    ("\\boxed{2125}", "2,125", "fr", "number", True),
    ("\\boxed{2.125}", "2,125", "en", "number", False),  # in English '.' is only a decimal point
    ("\\boxed{2.125}", "2,125", "fr", "number", True),  # in French it may group thousands: read both ways
    ("\\boxed{25}", "25%", "en", "number", True),
    ("\\boxed{0.25}", "25%", "en", "number", True),
    ("\\boxed{25\\%}", "25", "en", "number", True),
    ("\\boxed{26}", "25%", "en", "number", False),
    ("\\boxed{18}", "18 dollars", "en", "number", True),
    ("Die Antwort lautet 18 €.", "18 Euro", "de", "number", True),
    ("\\boxed{19}", "$18", "en", "number", False),
])
def test_gold_decimal_commas_units_and_percent(grader, completion, gold, lang, kind, correct):
    check(grader, completion, gold, lang, kind, correct)


# ---- hedges and negations after a cue ----

@pytest.mark.parametrize("completion,gold,lang,correct", [
    ("Die Antwort lautet 3 oder 5.", "3", "de", False),
    ("The answer is either 3 or 5.", "5", "en", False),
    ("Jibu ni 3 au 5.", "3", "sw", False),
    ("答案是 3 或 5。", "3", "zh", False),
    ("The answer is 3 and then we stop.", "3", "en", True),
    ("The answer is not 5, it is 6.", "6", "en", True),
    ("The answer is not 5, it is 6.", "5", "en", False),
    ("Ответ: не 5.", "5", "ru", False),
])
def test_hedges_and_negations_after_a_cue(grader, completion, gold, lang, correct):
    check(grader, completion, gold, lang, "number", correct)
