"""math-verify behind one function: a gold answer and a prediction -> (correct, error).

In: a gold answer and an extracted prediction (LaTeX or plain). Out: `verify_math`'s verdict, with
error "unparseable gold" where math-verify can only read the gold as a raw string; it has no timeout of
its own and runs in a worker process (`xling.grading.workers`). `verify_with_alarm` runs it in this
process, stopped by an alarm after a deadline (main thread only), with error "timeout".
"""

from __future__ import annotations

import logging
import signal
import time
from functools import lru_cache

from xling.grading.workers import TIMEOUT

UNPARSEABLE_GOLD = "unparseable gold"


def _quiet_math_verify() -> None:
    logging.getLogger("math_verify").setLevel(logging.ERROR)


def _wrap(text: str) -> list[str]:
    if "\\boxed" in text or "$" in text:
        return [text]
    return [f"\\boxed{{{text}}}", f"${text}$"]


@lru_cache(maxsize=1)
def _latex_only() -> list:
    """math-verify's default LaTeX extraction alone: enough for a `\\boxed{}` form, and faster."""
    from math_verify import LatexExtractionConfig
    from math_verify.parser import NormalizationConfig

    norm = NormalizationConfig(basic_latex=True, units=True, malformed_operators=True, nits=True,
                               boxed="all", equations=False)
    return [LatexExtractionConfig(try_extract_without_anchor=True, boxed_match_priority=50,
                                  normalization_config=norm)]


def _parse(text: str) -> list:
    """math-verify's parse of an answer: its boxed form (LaTeX only), else `$...$` (LaTeX or plain)."""
    from math_verify import parse

    for form in _wrap(text):
        config = _latex_only() if form.startswith("\\boxed{") else None
        parsed = parse(form, extraction_config=config, parsing_timeout=None) if config else parse(form, parsing_timeout=None)
        if parsed:
            return parsed
    return []


@lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> list:
    _quiet_math_verify()
    return _parse(gold)


def verify_math(gold: str, prediction: str | None) -> tuple[bool, str | None]:
    """math-verify's verdict on one (gold, prediction) pair: (correct, error). No timeout of its own.

    Runs inside a worker process (see `WorkerPool`); a prediction of None only checks the gold.
    """
    from math_verify import verify

    _quiet_math_verify()
    gold_parsed = _parse_gold(gold) if gold.strip() else []
    if not any(not isinstance(g, str) for g in gold_parsed):  # only math-verify's raw-string fallback
        return False, UNPARSEABLE_GOLD
    if prediction is None:
        return False, None
    pred_parsed = _parse(prediction)
    if not pred_parsed:
        return False, None
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None)), None


class _Deadline(BaseException):
    """Raised by `verify_with_alarm`'s alarm. Not an `Exception`, and not math-verify's own
    `TimeoutException` (which its `verify` and `parse` catch and turn into "False" or "no parse",
    after which the next comparison ran with no alarm at all): nothing between here and the
    alarm catches it, so the check stops at once."""


_ALARM_REPEAT = 0.05  # should anything swallow one alarm, the next comes this soon after
_warmed = False


def _warm_up() -> None:
    """Import math-verify, sympy and the LaTeX parser before any alarm is set: an alarm that fires
    inside an import would leave a half-imported module behind."""
    global _warmed
    if not _warmed:
        verify_math("\\frac{1}{2}", "0.5")
        verify_math("(1, 2]", "x^2 + \\sqrt{3} = 1")
        _warmed = True


def verify_with_alarm(gold: str, prediction: str | None, timeout: float) -> tuple[bool, str | None]:
    """`verify_math` in this process (main thread only), stopped after `timeout` seconds: then
    (False, "timeout"). The process's own SIGALRM handler and timer are restored afterwards."""
    _warm_up()
    armed = [True]

    def on_alarm(signum, frame):
        if armed[0]:
            raise _Deadline

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    started = time.monotonic()
    old_timer = signal.setitimer(signal.ITIMER_REAL, timeout, _ALARM_REPEAT)
    verdict: tuple[bool, str | None] = (False, TIMEOUT)
    try:
        verdict = verify_math(gold, prediction)
    except _Deadline:
        verdict = (False, TIMEOUT)
    finally:
        for _ in range(100):  # an alarm may land while disarming: catch it and disarm again
            try:
                armed[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                break
            except _Deadline:
                verdict = (False, TIMEOUT)
        signal.signal(signal.SIGALRM, old_handler)
        if old_timer[0] > 0:  # someone else's timer was running: give it back what it has left
            signal.setitimer(signal.ITIMER_REAL, max(1e-3, old_timer[0] - (time.monotonic() - started)), old_timer[1])
    return verdict
