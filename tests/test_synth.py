"""The built-in offline data set: parallel, seeded, exact, and rendered without leftovers in all 11 languages."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from xling.data import load
from xling.data.languages import CODES
from xling.data.synth import count_phrase, generate, problem, ru_form
from xling.data.synth_tables import NAMES, NOUNS, OBJECTS, TEMPLATES, TYPES
from xling.derived.translate import numbers

N = 300


@pytest.fixture(scope="module")
def data():
    return generate(N)


@pytest.fixture(scope="module")
def by_id(data):
    out: dict[str, dict] = {}
    for ex in data:
        out.setdefault(ex.id, {})[ex.lang] = ex
    return out


def test_parallel_in_every_language(data, by_id):
    assert Counter(e.lang for e in data) == {lang: N for lang in CODES}
    assert len(by_id) == N
    for pid, versions in by_id.items():
        assert set(versions) == set(CODES)
        assert len({v.answer for v in versions.values()}) == 1
        assert len({(v.meta["type"], v.meta["level"], v.meta["template"]) for v in versions.values()}) == 1
        assert len({v.question for v in versions.values()}) == len(CODES)  # really translated


def test_seeded_and_stable(data):
    again = generate(N)
    assert [e.to_dict() for e in again] == [e.to_dict() for e in data]
    assert [e.question for e in generate(5, langs=["en"])] == [e.question for e in data if e.lang == "en"][:5]
    test = generate(20, langs=["en"], split="test")
    assert test[0].id == "synth-test-0" and {e.question for e in test} != {e.question for e in data[:20]}
    other = generate(20, langs=["en"], seed=3)
    assert other[0].id == "synth-0-s3"


def test_no_template_leftovers(data):
    for ex in data:
        assert not re.search(r"[{}\[\]<>|]", ex.question), (ex.lang, ex.question)
        assert "  " not in ex.question and ex.question == ex.question.strip()


def test_numbers_match_across_languages(by_id):
    """Every language states the same numbers (ASCII digits); Japanese adds only counter phrases like 1箱."""
    for versions in by_id.values():
        en = numbers(versions["en"].question)
        for lang, ex in versions.items():
            got = numbers(ex.question)
            assert not en - got, (lang, ex.question)
            extra = got - en
            assert not extra or (lang == "ja" and set(extra) <= {"1", "2"}), (lang, ex.question)
            assert not re.search(r"[০-৯๐-๙౦-౯]", ex.question)  # no native digits


def test_answers_exact_and_solutions_check_out(data):
    for ex in (e for e in data if e.lang == "en"):
        assert ex.answer.isdigit() and int(ex.answer) >= 2
        solution = ex.meta["solution"]
        assert solution.endswith(f"\\boxed{{{ex.answer}}}.")
        for a, op, b, c in re.findall(r"(\d+) ([-+×÷]) (\d+) = (\d+)", solution):
            a, b, c = int(a), int(b), int(c)
            assert {"+": a + b, "-": a - b, "×": a * b, "÷": a / b}[op] == c, solution
        assert all(int(n) >= 2 for n in re.findall(r"\d+", ex.question)), ex.question


def test_solutions_are_in_the_problem_language(data):
    """SFT in a language learns from solutions that end in that language: the English steps'
    calculations, one per line, then the final answer with the language's own words."""
    from xling.grading.answers import grade
    from xling.data.synth_tables import FINAL_ANSWER

    en = {e.id: e.meta["solution"] for e in data if e.lang == "en"}
    for ex in data:
        solution = ex.meta["solution"]
        *steps, last = solution.split("\n")
        assert last == FINAL_ANSWER[ex.lang].replace("X", f"\\boxed{{{ex.answer}}}"), solution
        assert grade(solution, ex.answer, ex.lang, "number").correct
        if ex.lang != "en":
            calculations = re.findall(r"\d+(?: [-+×÷] \d+)+ = \d+", en[ex.id])
            assert steps == calculations and steps, (ex.lang, solution)
            assert not re.search(r"[A-Za-z]{2,}", "\n".join(steps))  # no English words left


def test_templates_cover_operations_and_languages(data):
    assert len(TEMPLATES) >= 10
    assert set(TYPES) == {"addition", "subtraction", "multiplication", "division", "multi-step"}
    assert {t.level for t in TEMPLATES} == {1, 2, 3}
    for t in TEMPLATES:
        assert set(t.text) == set(CODES), t.key
    assert {e.meta["template"] for e in data} == {t.key for t in TEMPLATES}
    assert {e.meta["object"] for e in data} == set(OBJECTS)
    for lang in CODES:
        assert len(NAMES[lang]) == 8 and [n[0] for n in NAMES[lang]] == ["m", "f"] * 4
        assert len({n[1] for n in NAMES[lang]}) == 8


def test_every_template_renders_in_every_language():
    seen = set()
    for i in range(2000):
        p = problem(i)
        seen.add(p["template"].key)
    assert seen == {t.key for t in TEMPLATES}
    exs = generate(400)
    assert all(e.question for e in exs)


def test_two_different_people(data):
    for ex in (e for e in data if e.lang == "en"):
        p = problem(int(ex.id.split("-")[1]))
        assert p["names"][0] != p["names"][1]


def test_russian_count_forms():
    forms = ("книга", "книгу", "книги", "книг")
    assert [ru_form(n, forms) for n in (1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111, 112)] == [
        "книга", "книги", "книги", "книг", "книг", "книг", "книг", "книга", "книги", "книг", "книга", "книг", "книг"]
    assert ru_form(21, forms, "acc") == "книгу" and ru_form(11, forms, "acc") == "книг"
    assert count_phrase("ru", "egg", 3) == "3 яйца" and count_phrase("ru", "egg", 7) == "7 яиц"
    assert count_phrase("zh", "book", 5) == "5本书" and count_phrase("th", "egg", 4) == "ไข่ 4 ฟอง"
    assert count_phrase("sw", "book", 6) == "vitabu 6" and count_phrase("bn", "ball", 2) == "2টি বল"


def test_objects_defined_for_every_language():
    for lang in CODES:
        assert set(OBJECTS) <= set(NOUNS[lang])


def test_gendered_forms_follow_the_name():
    exs = [e for e in generate(400, langs=["ru", "fr"])]
    for ex in exs:
        if ex.lang == "ru":
            assert not re.search(r"\b(Мария|Анна|Ольга|Наталья) (купил|отдал|разделил)\b", ex.question), ex.question
            assert not re.search(r"\b(Иван|Дмитрий|Сергей|Алексей) (купила|отдала|разделила)\b", ex.question)
        else:
            assert not re.search(r"(Camille|Chloé|Léa|Manon) (a-t-il|achète-t-il|paie-t-il|lit-il)", ex.question)


def test_load_synth_limit_and_langs():
    data = load("synth", langs=["te", "zh"], limit=7)
    assert Counter(e.lang for e in data) == {"te": 7, "zh": 7}
    assert data[0].lang == "te"
