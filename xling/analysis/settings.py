"""How a study is analysed: the recipe keys every analysis shares, declared and checked once.

- `AnalysisSection`: the metrics' settings (bootstrap replicates, in- and out-of-domain benchmarks,
  the MTI policy): task `transfer`, and the base of the two below.
- `StudySection`: what a study of several members adds (contrasts, a per-member table, figures):
  evaluation recipes (`evaluate`, `observational`, through `xling.evaluation.settings.EvalSection`).
- `ScalingSection`: what a study across numbers of training languages adds (the scaling fits):
  task `analyze`, a sweep's `analyze:` section and `evaluate`.

`options()` gives the keyword arguments of `xling.report.study.analyze`, so that no task copies
these settings by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from xling.analysis import metrics as M
from xling.common.checks import n_boot_problem
from xling.common.config import Invalid
from xling.data.languages import LANGUAGES, unknown_language_message


@dataclass(kw_only=True)
class AnalysisSection:
    """The transfer metrics' settings (defaults: docs/protocol.md)."""

    n_boot: int = 1000  # bootstrap replicates (paired over items) for every 95% interval
    in_domain: list[str] = field(default_factory=lambda: list(M.IN_DOMAIN))  # benchmarks averaged as MTI ID
    out_of_domain: list[str] = field(default_factory=lambda: list(M.OUT_OF_DOMAIN))  # benchmarks averaged as MTI OOD
    mti_policy: Literal["defined", "paper"] = "defined"  # defined: mean of the defined TIs; paper: None where most are undefined

    def options(self) -> dict:
        """Keyword arguments of `xling.report.study.analyze` (with the recipe's seed added by the caller)."""
        return {"n_boot": self.n_boot, "in_domain": list(self.in_domain), "out_of_domain": list(self.out_of_domain),
                "mti_policy": self.mti_policy}

    def check(self) -> None:
        if (problem := n_boot_problem(self.n_boot)) is not None:
            raise Invalid("n_boot", problem)
        both = set(self.in_domain) & set(self.out_of_domain)
        if both:
            raise Invalid("out_of_domain", f"{', '.join(sorted(both))} cannot be both in- and out-of-domain")


@dataclass(kw_only=True)
class StudySection(AnalysisSection):
    """A study of several members: contrasts between them, a table of their accuracies, figures."""

    contrasts: dict[str, list[str]] = field(default_factory=dict)  # label -> [a, b]: Gen and accuracy a − b, with CIs
    table_langs: list[str] = field(default_factory=list)  # accuracy per member in these languages (e.g. en, zh, de)
    plots: bool = True  # draw the figures (figures/*.png) and put them in report.md

    def options(self) -> dict:
        return {**super().options(), "contrasts": {k: list(v) for k, v in self.contrasts.items()},
                "table_langs": list(self.table_langs)}

    def check(self) -> None:
        super().check()
        for label, pair in self.contrasts.items():
            if len(pair) != 2:
                raise Invalid(f"contrasts.{label}", "name two members: [a, b] (reported as a − b)")
        for code in self.table_langs:
            if code not in LANGUAGES:
                raise Invalid("table_langs", unknown_language_message(code))


@dataclass(kw_only=True)
class ScalingSection(StudySection):
    """A study across numbers of training languages X: the power-law fits, leap and gap."""

    fit_from: int = 2  # smallest X used in the scaling fits
    paper_curve: bool = True  # draw the paper's published curve beside the fit

    def options(self) -> dict:
        return {**super().options(), "fit_from": self.fit_from}

    def check(self) -> None:
        super().check()
        if self.fit_from < 1:
            raise Invalid("fit_from", "must be at least 1")
