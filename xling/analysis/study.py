"""The one analysis of a study: every evaluation, sweep, `analyze`, `observational` and `paper-replay` goes through it.

A study is a set of evaluated models: bases, and trained models (its *members*, `xling.analysis.members`),
each with the base it is compared with, its training languages, its number of training languages X on the
scaling curve (None: off the curve) and its paradigm (RL, SFT, ...). From per-item results (or, without
them, an accuracy table) `analyze` computes a `Study`:

- accuracy and off-target rate per (model, benchmark, language) — `xling.analysis.summary.summarize`;
- per member over its base: relative gains, TI, MTI (per benchmark, avg / ID / OOD) and Gen;
- per paradigm: the mean MTI of its members (and the difference of the first two paradigms);
- where members differ in X: the Parallel Scaling Law f(X) = α·X^β fitted to MTI and to mean accuracy
  (α, β with standard errors, R²), the First-Parallel Leap (value at X=2 − value at X=1) and the
  Monolingual Generalization Gap (f(1) − value at X=1). Fewer than three distinct X ≥ `fit_from` with
  defined values: no fit, said in words.

With per-item results every number carries a paired bootstrap 95% interval: one draw of items per
replicate serves every model, language and statistic, and the power law is refitted in every replicate.
Nothing is printed or drawn here: `xling.report.study` renders a Study.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from xling.analysis import metrics as M
from xling.analysis import summary as S
from xling.analysis.members import Member, check_members, curve_members
from xling.common.errors import XlingError

METRIC_LABELS = {"mti": "MTI", "accuracy": "mean accuracy (%)"}


def scaling_of(by_x: Mapping[int, float | None], fit_from: int = 2) -> dict:
    """Fit, leap and gap of one metric given per X (None values are left out).

    Returns {"x", "y", "fit" (PowerLawFit.as_dict() or None), "alpha", "beta", "r2", "leap", "gap",
    "english_only", "expected_1", "note"}; `note` says in words why there is no fit.
    """
    from xling.analysis.scaling import fit_power_law

    pts = {int(x): float(y) for x, y in by_x.items() if y is not None and math.isfinite(y)}
    xs = sorted(pts)
    out: dict[str, Any] = {"x": xs, "y": [pts[x] for x in xs], "fit": None, "alpha": None, "beta": None, "r2": None,
                           "leap": None, "gap": None, "english_only": pts.get(1), "expected_1": None, "note": None}
    if 1 in pts and 2 in pts:
        out["leap"] = M.first_parallel_leap(pts)
    fit_x = [x for x in xs if x >= fit_from]
    if len(fit_x) < 3:
        have = ", ".join(map(str, fit_x)) or "none"
        out["note"] = (f"no power-law fit: it needs values at three distinct X >= {fit_from} (training languages, "
                       f"English included); this study has X = {have}")
        return out
    if all(pts[x] == 0 for x in fit_x):
        out["note"] = f"no power-law fit: the value is 0 at every X >= {fit_from}"
        return out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's OptimizeWarning on a perfect or degenerate fit
            fit = fit_power_law(fit_x, [pts[x] for x in fit_x])
    except XlingError as e:
        out["note"] = str(e)
        return out
    out.update(fit=fit.as_dict(), alpha=fit.alpha, beta=fit.beta, r2=fit.r2, expected_1=fit.alpha)
    if 1 in pts:
        out["gap"] = M.generalization_gap(fit.alpha, pts[1])
    return out


_SCALARS = ("alpha", "beta", "r2", "leap", "gap")


def _scaling_numbers(result: dict) -> dict:
    return {k: result[k] for k in _SCALARS}


def gen_of(transfer: Mapping | None) -> float | None:
    """A member's Gen: the mean of its defined per-benchmark Gens."""
    return M.mean_defined((transfer or {}).get("gen", {}).values())


def lang_accuracy(acc: Mapping, model: str, lang: str) -> float | None:
    """A model's accuracy in one language, averaged over the benchmarks that have it."""
    return M.mean_defined(per_l.get(lang) for per_l in (acc.get(model) or {}).values())


def study_statistic(members: Sequence[Member], on_curve: Sequence[Member], langs: Mapping[str, Sequence[str]],
                    fit_from: int, contrasts: Mapping[str, Sequence[str]], table_langs: Sequence[str]):
    """(acc, per-member transfer) -> every study-level number: each member's Gen and accuracy in the table's
    languages, the contrasts between members, and the scaling numbers of MTI and mean accuracy. The point
    estimate and every bootstrap replicate go through it."""

    def stat(acc: Mapping, transfer: Mapping[str, dict]) -> dict:
        gen = {m.name: gen_of(transfer.get(m.name)) for m in members}
        out: dict = {"gen": gen, "langs": {m.name: {l: lang_accuracy(acc, m.name, l) for l in table_langs}
                                           for m in members}}
        if contrasts:
            mean = {m: S.mean_accuracy(acc, m, langs) for pair in contrasts.values() for m in pair}
            out["contrasts"] = {label: {"gen": _diff(gen.get(a), gen.get(b)), "accuracy": _diff(mean[a], mean[b])}
                                for label, (a, b) in contrasts.items()}
        if on_curve:
            mti = {m.x: (transfer.get(m.name) or {}).get("mti", {}).get("avg") for m in on_curve}
            accuracy = {m.x: S.mean_accuracy(acc, m.name, langs) for m in on_curve}
            out["scaling"] = {"mti": _scaling_numbers(scaling_of(mti, fit_from)),
                              "accuracy": _scaling_numbers(scaling_of(accuracy, fit_from))}
        return out

    return stat


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


@dataclass
class Study:
    summary: S.Summary
    members: list[Member]
    scaling: dict | None = None  # metric -> scaling_of(...) + {"ci": {alpha, beta, r2, leap, gap}}
    notes: list[str] = field(default_factory=list)
    fit_from: int = 2
    point: dict = field(default_factory=dict)  # study_statistic's numbers (gen, langs, contrasts) ...
    ci: dict = field(default_factory=dict)  # ... and their bootstrap intervals
    contrasts: dict = field(default_factory=dict)  # label -> [member a, member b]: a − b
    table_langs: list[str] = field(default_factory=list)  # languages shown per member (e.g. en, zh, de)

    def as_metrics(self) -> dict:
        out = self.summary.as_metrics()
        out["members"] = {m.name: asdict(m) for m in self.members}
        out["scaling"] = self.scaling
        out["gen_avg"] = self.point.get("gen", {})
        out["gen_avg_ci"] = self.ci.get("gen", {})
        if self.contrasts:
            out["contrasts"] = {label: {"a": a, "b": b, **self.point["contrasts"][label],
                                        "ci": (self.ci.get("contrasts") or {}).get(label, {})}
                                for label, (a, b) in self.contrasts.items()}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _groups(members: Sequence[Member]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for m in members:
        if m.paradigm:
            groups.setdefault(m.paradigm, []).append(m.name)
    return groups


def analyze(items: Sequence[dict] | None, members: Sequence[Member], langs: Mapping[str, Sequence[str]],
            models: Sequence[str] | None = None, accuracies: Mapping | None = None, n: Mapping | None = None,
            in_domain=M.IN_DOMAIN, out_of_domain=M.OUT_OF_DOMAIN, n_boot: int = 1000, seed: int = 0,
            fit_from: int = 2, mti_policy: str = "defined", contrasts: Mapping[str, Sequence[str]] | None = None,
            table_langs: Sequence[str] = ()) -> Study:
    """The study of `members` from per-item records (with intervals) or from `accuracies` (without).

    `models`: every model to tabulate, in order (default: members' bases, then the members).
    `accuracies` (model -> benchmark -> lang -> percent) is used when `items` is None; `n` then gives the
    number of items per cell where known. `contrasts`: label -> (member a, member b), reported as a − b
    (Gen and mean accuracy) with intervals; `table_langs`: languages whose accuracy each member's row shows.
    """
    members = list(members)
    if models is None:
        models = list(dict.fromkeys([m.base for m in members] + [m.name for m in members]))
    models = list(models)
    check_members(members, models)
    comparisons = {m.name: S.Comparison(m.name, m.base, list(m.train_langs), m.paradigm) for m in members}
    groups = _groups(members) or None
    on_curve, why = curve_members(members)
    notes = [why] if why else []
    contrasts = {str(k): tuple(v) for k, v in (contrasts or {}).items()}
    names = {m.name for m in members}
    for label, pair in contrasts.items():
        if len(pair) != 2 or any(p not in names for p in pair):
            raise XlingError(f"contrast '{label}' must name two members (of {', '.join(sorted(names))}), got "
                             f"{list(pair)}")
    table_langs = [l for l in table_langs if any(l in ls for ls in langs.values())]
    extra = study_statistic(members, on_curve, langs, fit_from, contrasts, table_langs)
    common = dict(in_domain=in_domain, out_of_domain=out_of_domain, groups=groups, extra=extra, mti_policy=mti_policy)
    if items is not None:
        summary = S.summarize(items, models, langs, comparisons, n_boot=n_boot, seed=seed, **common)
    else:
        if accuracies is None:
            raise XlingError("nothing to analyze: give per-item results or an accuracy table")
        summary = S.summarize_accuracies(accuracies, models, langs, comparisons, n=n, **common)
    ci = summary.extra_ci or {}
    point = extra(summary.accuracy, summary.comparisons)
    scaling = None
    if on_curve:
        point_mti = {m.x: summary.comparisons[m.name]["mti"]["avg"] for m in on_curve}
        point_acc = {m.x: summary.mean_accuracy.get(m.name) for m in on_curve}
        scaling = {}
        for metric, by_x in (("mti", point_mti), ("accuracy", point_acc)):
            res = scaling_of(by_x, fit_from)
            res["ci"] = (ci.get("scaling") or {}).get(metric) or {}
            res["members"] = {str(m.x): m.name for m in on_curve}
            scaling[metric] = res
            if res["note"]:
                notes.append(f"{METRIC_LABELS[metric]}: {res['note']}")
    return Study(summary, members, scaling, notes, fit_from, point, ci, contrasts, list(table_langs))

