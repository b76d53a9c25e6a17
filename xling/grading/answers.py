"""The one grader: find the final answer of a completion and check it against the gold answer.

Training rewards (`xling.train.rewards`) and evaluation scores call the same code, so an answer counts
the same in both. Gold answers come in three kinds:

- ``number`` (MGSM, MSVAMP): numeric equality after normalising how people write numbers in the 11
  languages (`xling.grading.numbers`). Pure Python and fast. Gold numbers are read the English way where
  that is a reading (MGSM writes ``2,125`` for 2125 in every language), a decimal comma (``1,22``)
  as a decimal; units and percent are dressing (``25%`` is 25 or 0.25, ``18 dollars`` is 18).
- ``math`` (MATH500, AIME): math-verify, ``verify(gold, prediction)`` with the gold first, run in
  worker processes with a hard timeout (its own `signal.alarm` timeouts fail off the main thread, and
  inputs such as ``10^{10^{10}}`` hang it). Where gold and prediction are both plain numbers (or
  both times of day) the comparison is decided without math-verify; in a language that writes
  decimal commas a gold ``1,22`` is 1.22, not the list (1, 22).
- ``choice`` (GPQA, MMLU-ProX): the option letter A–J.

What counts as the final answer is `xling.grading.extraction`'s business: the last box group, an explicit
final statement after it, a localized "the answer is" cue, then the last LaTeX expression or
number. Never generous: a multi-part answer is compared as a whole, and so is a hedge
("\\boxed{3} or \\boxed{5}" is wrong unless the gold is "3, 5", as for "x = 3 or x = 5"); a hedge
for a number or a letter ("3 or 5", "A or B") is wrong; digits are never read out of LaTeX.

A gold answer that cannot be parsed is an error in the data set: the result has
``error="unparseable gold"`` and is never correct. A verification that runs past the timeout is
wrong, with ``error="timeout"``; the worker is killed and replaced, the run goes on. With
``workers=0`` math-verify runs in this process under an alarm whose exception math-verify cannot
catch, so the timeout holds there too (off the main thread, where alarms cannot be used, a
one-worker pool takes over). Timeouts are finite numbers of seconds in (0, 3600].

Use `grade()` / `grade_batch()` (a shared default `Grader`), or a `Grader` of your own to choose
the timeout and the number of worker processes; keep it for the whole run, its pool is reused.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Literal, Sequence

from xling.common.errors import XlingError
from xling.grading.extraction import HEDGE, Extraction, boxes, extract, last_boxed, parse_choice
from xling.grading.extraction import _decimal_comma
from xling.data.languages import LANGUAGES
from xling.grading.verify import UNPARSEABLE_GOLD, verify_math, verify_with_alarm
from xling.grading.workers import TIMEOUT, WorkerPool
from xling.grading.numbers import (
    format_value, normalize_digits, number_in_answer, number_tokens, numbers_equal, parse_number,
    parse_time,
)

Kind = Literal["math", "number", "choice"]
KINDS: tuple[str, ...] = ("math", "number", "choice")
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 3600.0


def timeout_problem(value: Any) -> str | None:
    """What is wrong with a verification timeout (None if nothing): a finite number of seconds in
    (0, MAX_TIMEOUT]. NaN would switch the timeout off and inf or 1e9 overflow the timers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number of seconds, not {value!r}"
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        return f"must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, not {value!r}"
    return None


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class GradeResult:
    extracted: str | None  # the final answer as written in the completion, None if there is none
    correct: bool
    error: str | None = None  # "unparseable gold", "timeout", "verifier error: ..." or None
    source: str | None = None  # where the answer was found: "boxed", "cue", "latex", "last_number",
    # "last_line" (a letter alone on the last line), or "hedge" (several answers offered: wrong)
    value: str | None = None  # normalised answer: canonical number or option letter

    def as_dict(self) -> dict:
        return asdict(self)


def gold_numbers(gold: Any) -> tuple[Fraction, ...] | None:
    """The values a gold answer of the ``number`` kind allows, or None if it is not a number.

    ``2,125`` is 2125 (MGSM's English writing, in every language), ``1,22`` is 1.22; a percent allows
    both readings (``25%`` is 25 or 0.25); units and currency are dressing (``18 dollars``, ``$18``).
    """
    if gold is None or isinstance(gold, bool):
        return None
    return _gold_numbers(str(gold).strip())


@lru_cache(maxsize=4096)
def _gold_numbers(text: str) -> tuple[Fraction, ...] | None:
    values = parse_number(text)
    if values is None:
        found = number_tokens(text)
        values = found[0][1] if len(found) == 1 and number_in_answer(text) is not None else None
    if not values:
        return None
    return tuple(values) if "%" in text else (values[0],)


def _grade_number(ext: Extraction, gold: Any, lang: str | None) -> GradeResult:
    gold_values = gold_numbers(gold)
    if not gold_values:
        return GradeResult(ext.text, False, UNPARSEABLE_GOLD, ext.source)
    if ext.text is None:
        return GradeResult(None, False, None, None)
    if ext.source == HEDGE or len(ext.parts) > 1:  # "3 or 5", or several numbers for one: wrong
        return GradeResult(ext.text, False, None, ext.source)
    found = number_in_answer(ext.text, _decimal_comma(lang))
    if found is None:
        return GradeResult(ext.text, False, None, ext.source)
    values = found[1]
    correct = any(numbers_equal(v, g) for v in values for g in gold_values)
    return GradeResult(ext.text, correct, None, ext.source, format_value(values[0]))


def _grade_choice(ext: Extraction, gold: Any) -> GradeResult:
    gold_letter = parse_choice(gold) if gold is not None else None
    if gold_letter is None:
        return GradeResult(ext.text, False, UNPARSEABLE_GOLD, ext.source)
    if ext.source == HEDGE or len(ext.parts) > 1:
        return GradeResult(ext.text, False, None, ext.source)
    letter = parse_choice(ext.text) if ext.text is not None else None
    return GradeResult(ext.text, letter == gold_letter, None, ext.source, letter)


_GROUPED_GOLD = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA_GOLD = re.compile(r"-?\d{1,3}(?:\.\d{3})+,\d+|-?\d+,\d+")


def _plain_number(text: str, decimal_comma: bool = False) -> list[Fraction] | None:
    if "%" in text:
        return None
    return parse_number(text, decimal_comma)


def _math_gold_number(gold: str, decimal_comma: bool) -> list[Fraction] | None:
    """A math gold that is a plain number (None where math-verify must read it)."""
    if "," in gold and not _GROUPED_GOLD.fullmatch(gold):
        if decimal_comma and _DECIMAL_COMMA_GOLD.fullmatch(gold):  # "1,22" in de is 1.22
            values = parse_number(gold, True)
            return values[:1] if values else None
        return None  # "1,2" is a list to math-verify, not a decimal
    return _plain_number(gold)


def _grade_math_fast(ext: Extraction, gold: str, lang: str | None) -> GradeResult | None:
    """Verdicts that need no math-verify (numbers, times); None where it is needed. A hedge or a
    multi-part answer goes to math-verify as a whole: "x = 2 or x = 5" is right for the gold "2, 5"
    and wrong for "2"."""
    if not gold:
        return GradeResult(ext.text, False, UNPARSEABLE_GOLD, ext.source)
    gold_time = parse_time(gold) if ":" in gold else None
    if gold_time is not None and ext.text is not None:
        pred_time = parse_time(ext.text)
        return GradeResult(ext.text, pred_time == gold_time, None, ext.source,
                           None if pred_time is None else "%d:%02d" % pred_time)
    decimal_comma = _decimal_comma(lang)
    gold_values = _math_gold_number(gold, decimal_comma)
    if gold_values is None or ext.text is None or ext.parts:
        return None
    pred_values = _plain_number(ext.text, decimal_comma) if ext.source == "boxed" else None
    if pred_values is None and ext.source != "boxed":
        found = number_tokens(ext.text, decimal_comma)
        pred_values = found[0][1] if len(found) == 1 and found[0][0] == ext.text.strip() else None
    if pred_values is None:
        return None
    correct = any(numbers_equal(v, gold_values[0]) for v in pred_values)
    return GradeResult(ext.text, correct, None, ext.source, format_value(pred_values[0]))


Pending = tuple[str, str | None]  # (gold, prediction) that math-verify must judge


def _first_pass(completions: Sequence[str], answers: Sequence[Any], langs: Sequence[str | None],
                kinds: Sequence[str]) -> list[tuple[Extraction, GradeResult | None, Pending | None]]:
    """Extraction, and every verdict that needs no math-verify (pure Python; runs in workers too)."""
    out: list[tuple[Extraction, GradeResult | None, Pending | None]] = []
    for completion, gold, lang, kind in zip(completions, answers, langs, kinds):
        ext = extract(completion, kind, lang)
        if kind == "number":
            out.append((ext, _grade_number(ext, gold, lang), None))
        elif kind == "choice":
            out.append((ext, _grade_choice(ext, gold), None))
        else:
            gold_text = "" if gold is None else str(gold).strip()
            done = _grade_math_fast(ext, gold_text, lang)
            pred = ", ".join(ext.parts) if ext.parts else ext.text
            pred = normalize_digits(pred) if pred is not None else None
            out.append((ext, done, None if done else (gold_text, pred)))
    return out


# ---------------------------------------------------------------------------------- the grader


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise XlingError(f"unknown answer kind '{kind}'; choose one of: {', '.join(KINDS)}")
    return kind


class Grader:
    """Grades completions against gold answers; keep one per run (its worker pool is reused).

    `workers=0` verifies math in this process, under an alarm that math-verify cannot swallow (off
    the main thread, in a one-worker pool of its own); `workers=None` takes up to 8 CPU cores. A
    `pool` given here is used (and left open by `close()`), e.g. to share one pool with language ID.
    `timeout` is in seconds per check, a finite number in (0, 3600].
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, workers: int | None = None,
                 start_method: str | None = None, cache_size: int = 100_000, pool: WorkerPool | None = None,
                 parallel_min: int = 256):
        problem = timeout_problem(timeout)
        if problem:
            raise XlingError(f"the verification timeout {problem}")
        self.timeout = float(timeout)
        self.workers = (pool.workers if pool else default_workers()) if workers is None else workers
        self.start_method = start_method
        self.cache_size = cache_size
        self.parallel_min = parallel_min  # batches this large are extracted in the workers too
        self.stats: Counter = Counter()
        self._cache: dict[tuple[str, str | None], tuple[bool, str | None]] = {}
        self._pool: WorkerPool | None = pool  # a pool given here is shared: close() leaves it open
        self._own_pool = pool is None
        self._solo: WorkerPool | None = None  # workers=0 off the main thread: alarms cannot be used there

    @property
    def pool(self) -> WorkerPool | None:
        """The worker pool (started on first use), or None when `workers=0`."""
        if self.workers and self._pool is None:
            self._pool = WorkerPool(self.workers, self.start_method)
        return self._pool

    def grade(self, completion: str, answer: Any, lang: str | None = None, kind: str = "math") -> GradeResult:
        return self.grade_batch([completion], [answer], [lang], [kind])[0]

    def grade_batch(self, completions: Sequence[str], answers: Sequence[Any],
                    langs: Sequence[str | None] | str | None = None,
                    kinds: Sequence[str | None] | str = "math") -> list[GradeResult]:
        """Grade many completions at once; `langs` and `kinds` are one value or one per completion."""
        n = len(completions)
        if len(answers) != n:
            raise XlingError(f"{n} completions but {len(answers)} gold answers")
        langs_ = [langs] * n if langs is None or isinstance(langs, str) else list(langs)
        kinds_ = [kinds] * n if isinstance(kinds, str) else [k or "math" for k in kinds]
        if len(langs_) != n or len(kinds_) != n:
            raise XlingError(f"{n} completions but {len(langs_)} languages and {len(kinds_)} kinds")
        for lang in set(langs_):
            if lang is not None and lang not in LANGUAGES:
                from xling.data.languages import unknown_language_message
                raise XlingError(unknown_language_message(lang))
        for kind in set(kinds_):
            _check_kind(kind)

        first = self._first_passes(list(completions), list(answers), langs_, kinds_)
        results = [done for _, done, _ in first]
        pending = {i: (pair, ext) for i, (ext, done, pair) in enumerate(first) if pair is not None}
        if pending:
            verdicts = self._verify(sorted({pair for pair, _ in pending.values()}, key=str))
            for i, (pair, ext) in pending.items():
                correct, error = verdicts[pair]
                results[i] = GradeResult(ext.text, correct, error, ext.source)
        for r in results:
            self.stats["graded"] += 1
            if r.error:
                self.stats[r.error.split(":")[0]] += 1
        return results  # type: ignore[return-value]

    def _first_passes(self, completions: list, answers: list, langs: list, kinds: list) -> list:
        """`_first_pass` over the batch: spread over the workers when the batch is large."""
        n = len(completions)
        if self.workers < 2 or n < self.parallel_min:
            return _first_pass(completions, answers, langs, kinds)
        size = -(-n // (self.workers * 4))
        chunks = [(completions[k:k + size], answers[k:k + size], langs[k:k + size], kinds[k:k + size])
                  for k in range(0, n, size)]
        out: list = []
        for (value, error), chunk in zip(self.pool.map(_first_pass, chunks, timeout=max(60.0, self.timeout)), chunks):  # type: ignore[union-attr]
            out.extend(value if error is None else _first_pass(*chunk))  # a failed chunk is redone here
        return out

    def _verify(self, pairs: list[tuple[str, str | None]]) -> dict[tuple[str, str | None], tuple[bool, str | None]]:
        out = {p: self._cache[p] for p in pairs if p in self._cache}
        todo = [p for p in pairs if p not in out]
        if todo:
            if self.workers:
                answers = self.pool.map(verify_math, todo, timeout=self.timeout)  # type: ignore[union-attr]
                verdicts = [value if error is None else (False, error) for value, error in answers]
            else:
                verdicts = [self._verify_here(g, p) for g, p in todo]
            if len(self._cache) + len(todo) > self.cache_size:
                self._cache.clear()
            for pair, verdict in zip(todo, verdicts):
                self._cache[pair] = verdict
                out[pair] = verdict
        return out

    def _verify_here(self, gold: str, prediction: str | None) -> tuple[bool, str | None]:
        """math-verify in this process, stopped at the timeout (`workers=0`)."""
        if threading.current_thread() is not threading.main_thread():
            if self._solo is None:
                self._solo = WorkerPool(1, self.start_method)
            (value, error), = self._solo.map(verify_math, [(gold, prediction)], timeout=self.timeout)
            return value if error is None else (False, error)
        return verify_with_alarm(gold, prediction, self.timeout)

    def close(self) -> None:
        if self._solo is not None:
            self._solo.close()
            self._solo = None
        if self._pool is not None and self._own_pool:
            self._pool.close()
        self._pool = None if self._own_pool else self._pool

    def __enter__(self) -> "Grader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # picklable: the pool is not copied, a copy starts its own
        state = dict(self.__dict__)
        state["_pool"] = None
        state["_own_pool"] = True
        state["_solo"] = None
        return state


_DEFAULT: Grader | None = None


def default_grader() -> Grader:
    """The process-wide grader that `grade()` and `grade_batch()` use when given none."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Grader()
    return _DEFAULT


def grade(completion: str, answer: Any, lang: str | None = None, kind: str = "math", *,
          grader: Grader | None = None) -> GradeResult:
    """Grade one completion: its final answer against the gold `answer` of the given kind."""
    return (grader or default_grader()).grade(completion, answer, lang, kind)


def grade_batch(completions: Sequence[str], answers: Sequence[Any],
                langs: Sequence[str | None] | str | None = None,
                kinds: Sequence[str | None] | str = "math", *, grader: Grader | None = None) -> list[GradeResult]:
    """Grade many completions (same rules as `grade`), verifying math answers in parallel."""
    return (grader or default_grader()).grade_batch(completions, answers, langs, kinds)


__all__ = [
    "KINDS", "Kind", "GradeResult", "Grader", "WorkerPool", "Extraction", "extract", "grade",
    "grade_batch", "default_grader", "last_boxed", "boxes", "parse_number", "number_tokens",
    "parse_choice", "format_value", "normalize_digits", "verify_math", "verify_with_alarm", "gold_numbers",
    "timeout_problem", "UNPARSEABLE_GOLD", "TIMEOUT", "MAX_TIMEOUT", "HEDGE",
]
