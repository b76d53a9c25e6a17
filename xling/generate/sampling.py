"""Sampling settings that every generation path accepts, checked before anything is loaded.

The limits are vLLM 0.30.0's (`vllm/sampling_params.py`, `SamplingParams._verify_args` and
`_verify_greedy_sampling`), applied to both generation backends alike so that a setting that
runs on CPU with transformers does not crash later on a GPU with vLLM:

- temperature: a finite number in [0, 2] ("temperature must be in [0, 2]"); 0 is greedy;
- greedy (temperature 0) with n > 1: refused ("n must be 1 when using greedy sampling") — the
  n samples would be n copies of one answer (AIME's 16 samples need a temperature > 0);
- top_p: a finite number in (0, 1];
- n and max_tokens: at least 1 (max_tokens at most `xling.common.checks.MAX_TOKENS`).

`problem()` returns (field, message) for the first violation, so that a recipe check can name
its own key (`gen.temperature`, `rft.top_p`, `pairs[2].gen.max_tokens`, ...); `check()` raises
XlingError for callers without a key (a backend's `chat`).

`Sampling` / `SamplingSection` are these settings as a recipe section: every section that samples
(evaluation's `gen`, `pivot`, `grpo`, `rft`, and the completion cache's `GenerationSettings`)
extends one of them, so the keys mean the same everywhere and are checked by this one validator
when the recipe is read (a subclass may give its own defaults).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from xling.common.config import Invalid
from xling.common.errors import XlingError

MAX_TEMPERATURE = 2.0


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def problem(*, temperature: float, top_p: float, n: int = 1, max_tokens: int = 1) -> tuple[str, str] | None:
    """(field, message) for the first setting a backend would refuse, or None when all are accepted."""
    if not _number(temperature) or not math.isfinite(temperature):
        return "temperature", f"must be a finite number in [0, {MAX_TEMPERATURE:g}], got {temperature}"
    if not 0 <= temperature <= MAX_TEMPERATURE:
        return "temperature", (f"must be in [0, {MAX_TEMPERATURE:g}] (0: greedy), got {temperature:g}; vLLM refuses "
                               "other values")
    if not _number(top_p) or not math.isfinite(top_p) or not 0 < top_p <= 1:
        return "top_p", f"must be a number in (0, 1], got {top_p}"
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return "n", f"ask for at least one sample, got {n}"
    if temperature == 0 and n > 1:
        return "n", (f"{n} samples at temperature 0 (greedy) would be {n} copies of one answer, and vLLM refuses "
                     "n > 1 with greedy sampling; use one sample or a temperature above 0")
    from xling.common.checks import tokens_problem

    if (found := tokens_problem(max_tokens)) is not None:
        return "max_tokens", found
    return None


def check(*, temperature: float, top_p: float, n: int = 1, max_tokens: int = 1) -> None:
    """Raise XlingError naming the first setting a backend would refuse."""
    found = problem(temperature=temperature, top_p=top_p, n=n, max_tokens=max_tokens)
    if found is not None:
        key, message = found
        value = {"temperature": temperature, "top_p": top_p, "n": n, "max_tokens": max_tokens}[key]
        raise XlingError(f"{key}={value}: {message}")


@dataclass(kw_only=True)
class Sampling:
    """Temperature and top-p of a section that samples; its token limit is the field named by `TOKENS`."""

    TOKENS: ClassVar[str] = "max_tokens"  # the field that caps an answer's new tokens (GRPO: max_completion_length)

    temperature: float = 1.0  # sampling temperature, 0 (greedy) to 2
    top_p: float = 1.0  # nucleus sampling: draw from the most likely tokens holding this much probability (1: all)

    def sampling_problem(self, n: int = 1) -> tuple[str, str] | None:
        """(field, message) for the first setting a backend would refuse with `n` samples per prompt, or None."""
        found = problem(temperature=self.temperature, top_p=self.top_p, n=n, max_tokens=getattr(self, self.TOKENS, 1))
        if found is not None and found[0] == "max_tokens":
            return self.TOKENS, found[1]
        return found

    def check_samples(self, n: int, key: str = "n", why: str | None = None) -> None:
        """Raise Invalid when `n` samples per prompt cannot be drawn: the count is named by `key` (and refused
        with `why`, where given, when the temperature is 0); any other setting by its field."""
        found = self.sampling_problem(n)
        if found is not None:
            field, message = found
            raise Invalid(key if field == "n" else field, (why or message) if field == "n" else message)

    def check(self) -> None:
        self.check_samples(1)


@dataclass(kw_only=True)
class SamplingSection(Sampling):
    """`Sampling` with its token limit `max_tokens`."""

    max_tokens: int = 4096  # new tokens per answer at most; an answer cut off there counts as truncated
