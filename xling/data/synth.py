"""The built-in offline data set `synth`: parallel arithmetic word problems in all 11 languages.

Fifteen problem templates (addition, subtraction, multiplication, division, and two- and three-step
problems) are written out in each language as a native speaker would phrase them; objects, names
and numbers vary. Problem `i` is generated from its own seeded random stream, so `synth-i` is the
same problem, with the same numbers and the same answer, in every language and in every run.
Answers are exact integers; every quantity in a question is at least 2 (so no singular forms are
needed), numbers are ASCII digits, and each problem carries a worked solution (for SFT): in English the
steps in words; in the other languages the same calculations (`23 + 12 = 35`, one per line)
followed by the final answer in that language (`Die Antwort lautet \\boxed{35}.`), so that SFT in a
language never learns to answer in English.

Grammar is handled where it cannot be avoided: Russian count forms (1 / 2–4 / 5+, accusative of
feminine nouns) and name cases, Bengali and Telugu name cases, gendered verbs and pronouns
(Russian, French, German) from the name's gender, classifiers and counters (zh, ja, th, bn),
Swahili noun-class agreement for "how many" and "all". Telugu uses the respectful plural verb
forms, which are natural with a person's name and need no gender.

The names, nouns, templates and final-answer lines are data: `xling.data.synth_tables`. This module
draws problems from them, renders them in each language, and holds the splits.
"""

from __future__ import annotations

import random
import re
from typing import Iterable, Sequence

from xling.data.core import Example
from xling.data.languages import CODES, check_codes
from xling.data.synth_tables import (
    ENGLISH_PLURAL, FINAL_ANSWER, NAMES, NOUNS, OBJECTS, TEMPLATES, NameForms, Template,
)

DEFAULT_SIZE = 2000

def ru_form(n: int, forms: Sequence[str], case: str = "nom") -> str:
    """The Russian noun form after the number n: 1 (nominative or accusative), 2–4, or 5+."""
    nom1, acc1, few, many = forms
    if n % 10 == 1 and n % 100 != 11:
        return acc1 if case == "acc" else nom1
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def count_phrase(lang: str, noun: str, n: int, case: str = "nom") -> str:
    spec = NOUNS[lang][noun]
    if "ru" in spec:
        return f"{n} {ru_form(n, spec['ru'], case)}"
    return spec["n"].format(n=n)


# -- rendering ---------------------------------------------------------------------------------

_SLOT = re.compile(r"\{(\w+)(?:\.(\w+))?(?::(\w+)(?:\.(\w+))?)?\}")
_GENDER_A = re.compile(r"\[([^|\]]*)\|([^\]]*)\]")
_GENDER_B = re.compile(r"<([^|>]*)\|([^>]*)>")
_NAME_CASE = {None: 1, "nom": 1, "gen": 2, "dat": 3}
_WORD_FORMS = ("q", "Q", "pl", "cl", "de", "gp", "all")


def render(text: str, lang: str, values: dict[str, int], obj: str, a: NameForms, b: NameForms) -> str:
    """Fill one template's text for one language."""
    text = _GENDER_A.sub(lambda m: m.group(1) if a[0] == "m" else m.group(2), text)
    text = _GENDER_B.sub(lambda m: m.group(1) if b[0] == "m" else m.group(2), text)

    def slot(m: re.Match) -> str:
        head, head_case, noun, case = m.groups()
        if head in ("A", "B") and noun is None:
            return (a if head == "A" else b)[_NAME_CASE[head_case]]
        if noun is None:
            return str(values[head])
        noun = obj if noun == "o" else noun
        if head in _WORD_FORMS:
            word = NOUNS[lang][noun]["q" if head == "Q" else head]
            return word[:1].upper() + word[1:] if head == "Q" else word
        return count_phrase(lang, noun, values[head], case or "nom")

    return _SLOT.sub(slot, text)


def _solution(t: Template, values: dict[str, int], obj: str, answer: int, lang: str = "en") -> str:
    v = dict(values)
    if t.key in ("buy-give", "buy-share"):
        v["s1"] = values["a"] + values["b"]
    elif t.key == "bags":
        v["s1"] = values["a"] * values["b"]
    elif t.key == "more-than":
        v["s1"] = values["a"] + values["b"]
    elif t.key == "times-as-many":
        v["s1"] = values["k"] * values["a"]
    elif t.key == "change":
        v["s1"] = values["b"] * values["c"]
    elif t.key == "keep-and-share":
        v["s1"] = values["a"] * values["b"]
        v["s2"] = v["s1"] - values["c"]
    steps = t.solution.format(pl=ENGLISH_PLURAL[obj], ans=answer, **v)
    if lang != "en":
        steps = "\n".join(_CALCULATION.findall(steps))
    return f"{steps}\n" + FINAL_ANSWER[lang].replace("X", f"\\boxed{{{answer}}}")


_CALCULATION = re.compile(r"\d+(?: [-+×÷] \d+)+ = \d+")


SPLITS = ("train", "test", "pretrain")
# The pretrain split never repeats one of the first HELD_APART problems of the train and test splits
# (same template, object, names and numbers): the toy model's pretraining stays apart from GRPO
# training and evaluation problems (their ids differ anyway: synth-i, synth-test-i, synth-pretrain-i).
HELD_APART = 2000


def problem(index: int, split: str = "train", seed: int = 0) -> dict:
    """The language-independent draw of problem `index`: template, object, names, numbers, answer."""
    if split == "pretrain":
        return _pretrain_draws(index + 1, seed)[index]
    rng = random.Random(f"xling-synth:{seed}:{split}:{index}")
    t = TEMPLATES[rng.randrange(len(TEMPLATES))]
    obj = rng.choice(OBJECTS)
    first, second = rng.sample(range(8), 2)
    values = t.numbers(rng)
    answer = t.answer(values)
    return {"template": t, "object": obj, "names": (first, second), "values": values, "answer": answer}


def content(p: dict) -> tuple:
    """What makes two draws the same problem: template and numbers, and the object and names where
    the template's text uses them (a train's speed problem names no person and no object)."""
    t = p["template"]
    if t.key not in _USES:
        text = "".join(t.text.values())
        _USES[t.key] = (":o" in text, "{A" in text or "[" in text, "{B" in text or "<" in text)
    obj, a, b = _USES[t.key]
    return (t.key, p["object"] if obj else None, p["names"][0] if a else None, p["names"][1] if b else None,
            tuple(sorted(p["values"].items())))


_USES: dict[str, tuple[bool, bool, bool]] = {}


_HELD: dict[int, frozenset] = {}
_PRETRAIN: dict[int, list[dict]] = {}


def held_apart(seed: int = 0) -> frozenset:
    """The contents of the first HELD_APART problems of the train and test splits."""
    if seed not in _HELD:
        _HELD[seed] = frozenset(content(problem(i, s, seed)) for s in ("train", "test") for i in range(HELD_APART))
    return _HELD[seed]


def _pretrain_draws(n: int, seed: int) -> list[dict]:
    """The first n problems of the pretrain split: its own random stream, skipping held-apart problems."""
    drawn = _PRETRAIN.setdefault(seed, [])
    if len(drawn) < n:
        held = held_apart(seed)
        j = drawn[-1]["draw"] + 1 if drawn else 0
        while len(drawn) < n:
            rng = random.Random(f"xling-synth:{seed}:pretrain:{j}")
            t = TEMPLATES[rng.randrange(len(TEMPLATES))]
            obj = rng.choice(OBJECTS)
            names = tuple(rng.sample(range(8), 2))
            values = t.numbers(rng)
            p = {"template": t, "object": obj, "names": names, "values": values, "answer": t.answer(values), "draw": j}
            if content(p) not in held:
                drawn.append(p)
            j += 1
    return drawn[:n]


def repeats(n: int, split: str = "train", of: str = "test", seed: int = 0, n_of: int = DEFAULT_SIZE) -> set[str]:
    """The ids among the first `n` problems of `split` that repeat, word for word, one of the first
    `n_of` problems of split `of` (the splits are drawn apart, so a small template can come up in both)."""
    theirs = {content(problem(i, of, seed)) for i in range(n_of)}
    return {problem_id(i, split, seed) for i in range(n) if content(problem(i, split, seed)) in theirs}


def problem_id(index: int, split: str = "train", seed: int = 0) -> str:
    base = f"synth-{index}" if split == "train" else f"synth-{split}-{index}"
    return base if seed == 0 else f"{base}-s{seed}"


def example(p: dict, index: int, lang: str, split: str = "train", seed: int = 0) -> Example:
    """Problem `p` (drawn as problem `index` of `split`) written out in `lang`, with its worked solution."""
    t = p["template"]
    a, b = (NAMES[lang][k] for k in p["names"])
    question = render(t.text[lang], lang, p["values"], p["object"], a, b)
    meta = {"type": t.type, "level": t.level, "template": t.key, "object": p["object"],
            "solution": _solution(t, p["values"], p["object"], p["answer"], lang)}
    return Example(problem_id(index, split, seed), lang, question, str(p["answer"]), "number", meta)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        from xling.common.errors import XlingError

        raise XlingError(f"synth has no split '{split}'; splits: {', '.join(SPLITS)}")


def generate(n: int | None = None, langs: Iterable[str] | None = None, split: str = "train",
             seed: int = 0) -> list[Example]:
    """`n` problems (default 2,000) in each of `langs` (default all 11), ordered by language.

    `synth-i` is the same problem in every language; `split="test"` draws a different set, and
    `split="pretrain"` (the toy model's pretraining problems) one that never repeats the first
    HELD_APART problems of the other two.
    """
    _check_split(split)
    n = DEFAULT_SIZE if n is None else n
    codes = check_codes(langs) if langs else CODES
    drawn = _pretrain_draws(n, seed) if split == "pretrain" else [problem(i, split, seed) for i in range(n)]
    return [example(p, i, lang, split, seed) for lang in codes for i, p in enumerate(drawn)]


def generate_one_each(langs: Sequence[str], split: str = "train", seed: int = 0) -> list[Example]:
    """Problem i of `split` in `langs[i]` only, for i < len(langs): a corpus in which no problem
    appears in two languages."""
    _check_split(split)
    check_codes(set(langs))
    n = len(langs)
    drawn = _pretrain_draws(n, seed) if split == "pretrain" else [problem(i, split, seed) for i in range(n)]
    return [example(p, i, lang, split, seed) for i, (p, lang) in enumerate(zip(drawn, langs))]
