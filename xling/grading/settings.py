"""How completions are scored: the grader's and language identification's settings, as one recipe section.

`ScoreSection` is evaluation's `score` section, the flat keys of task `grade` and the grading
keys of training's `rewards`: one declaration, one default each and one check, so that a
completion is judged alike wherever it is graded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xling.common.checks import workers_problem
from xling.common.config import Invalid
from xling.grading.answers import timeout_problem


@dataclass(kw_only=True)
class ScoreSection:
    """Grading (math-verify) and language identification of completions."""

    langid: Literal["langdetect", "lingua", "langid"] = "langdetect"  # language-ID backend (the paper's: langdetect)
    min_chars: int = 20  # fewer letters than this after stripping math: language undetermined
    reasoning_only: bool = False  # judge the language of the text before </think> only
    timeout: float = 5.0  # seconds per math-verify check; a check that takes longer counts as wrong
    workers: int | None = None  # grader / language-ID worker processes (null: one per CPU core, up to 8; 0: in this process)

    def as_dict(self) -> dict:
        """The settings a verdict depends on (not `workers`, which changes only the speed)."""
        return {"langid": self.langid, "min_chars": self.min_chars, "reasoning_only": self.reasoning_only,
                "timeout": self.timeout}

    def check(self) -> None:
        if self.min_chars < 0:
            raise Invalid("min_chars", f"must be 0 or more, got {self.min_chars}")
        if (problem := timeout_problem(self.timeout)) is not None:
            raise Invalid("timeout", problem)
        if self.workers is not None and (problem := workers_problem(self.workers)) is not None:
            raise Invalid("workers", problem)
