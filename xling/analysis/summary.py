"""An evaluation's numbers: per-item records (or an accuracy table) -> accuracies, off-target rates and
transfer metrics with paired-bootstrap 95% intervals, as one `Summary` (computed here; nothing printed or drawn).

- `cell_summary(items)`: accuracy, off-target rate and counts of one (model, benchmark, language) cell;
  `off_target_records(items)`: per-item off-target shares, as records the bootstrap resamples.
- `summarize(items, models, langs, comparisons)`: every cell, and for each (trained, base) `Comparison`
  the gains, TI, MTI (per benchmark, avg / ID / OOD) and Gen, with 95% intervals. One paired bootstrap
  (`xling.analysis.metrics.bootstrap`: the same items drawn for every model and language) serves all of them.
- `summarize_accuracies(accuracies, ...)`: the same summary from an accuracy table: point estimates only.

`xling.report.results` renders a Summary (files, terminal tables, figures, report.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from xling.analysis import metrics as M
from xling.common.errors import XlingError
from xling.grading.answers import UNPARSEABLE_GOLD

# An off-target (or on-target) rate rests on the answers whose language the identifier could judge. A cell
# judged on fewer answers than this is undetermined: no rate, no interval (its judged count is still shown).
MIN_JUDGED = 10


@dataclass
class Comparison:
    trained: str
    base: str
    train_langs: list[str]
    paradigm: str | None = None


@dataclass
class Summary:
    models: list[str]
    langs: dict[str, list[str]]  # benchmark -> languages
    cells: dict[str, dict[str, dict[str, dict]]]  # model -> benchmark -> lang -> cell_summary
    accuracy: dict
    accuracy_ci: dict
    off_target: dict
    off_target_ci: dict
    mean_accuracy: dict[str, float | None]
    mean_accuracy_ci: dict
    comparisons: dict[str, dict] = field(default_factory=dict)  # trained -> transfer metrics (+ ci)
    groups: dict[str, Any] = field(default_factory=dict)  # observational: paradigm means
    n_boot: int = 0
    extra_ci: dict = field(default_factory=dict)  # intervals of summarize(extra=...)'s statistic
    mean_off_target: dict = field(default_factory=dict)  # model -> mean off-target rate over its cells
    mean_off_target_ci: dict = field(default_factory=dict)
    off_target_judged: dict = field(default_factory=dict)  # model -> benchmark -> lang -> answers judged
    mean_off_target_judged: dict = field(default_factory=dict)  # model -> answers judged in its determined cells
    has_items: bool = True  # False: built from an accuracy table (no off-target, counts or intervals)

    def as_metrics(self) -> dict:
        truncated = {m: {b: {l: c["truncated"] for l, c in per_b.items()} for b, per_b in per_m.items()}
                     for m, per_m in self.cells.items()}
        out = {
            "accuracy": self.accuracy, "accuracy_ci": self.accuracy_ci,
            "off_target": self.off_target, "off_target_ci": self.off_target_ci,
            "mean_accuracy": self.mean_accuracy, "mean_accuracy_ci": self.mean_accuracy_ci,
            "mean_off_target": self.mean_off_target, "mean_off_target_ci": self.mean_off_target_ci,
            "off_target_judged": self.off_target_judged, "mean_off_target_judged": self.mean_off_target_judged,
            "off_target_min_judged": MIN_JUDGED,
            "truncated": truncated, "cells": self.cells, "comparisons": self.comparisons, "n_boot": self.n_boot,
        }
        if len(self.comparisons) >= 1:
            first = next(iter(self.comparisons.values()))
            out["mti"], out["gen"] = first["mti"], first["gen"]
            out["ci"] = first.get("ci", {})
        if self.groups:
            out["groups"] = self.groups
        return out


def _nest(items: Sequence[dict], value) -> dict:
    out: dict = {}
    for r in items:
        out.setdefault(r["model"], {}).setdefault(r["benchmark"], {}).setdefault(r["lang"], []).append(r)
    return {m: {b: {l: value(rs) for l, rs in per_b.items()} for b, per_b in per_m.items()} for m, per_m in out.items()}


def _samples_of(rec: dict, key: str) -> list:
    """A record's per-sample values of `key` (one value: one sample); none where the record lacks the key
    (per-item results in the minimal form: model, benchmark, lang, id, score|correct)."""
    if key not in rec:
        return []
    value = rec[key]
    return list(value) if isinstance(value, list) else [value]


def cell_summary(items: Sequence[dict]) -> dict:
    """Accuracy, off-target rate and counts of one (model, benchmark, language) cell.

    Accuracy (percent) is the mean item score; items whose gold answer cannot be parsed are left
    out. The off-target rate is over every sample whose language could be determined. Records in
    the minimal form (model, benchmark, lang, id, score) count one sample each, none truncated,
    and say nothing of languages, answers or tokens.
    """
    scored = [r for r in items if r.get("error") != UNPARSEABLE_GOLD]
    detected = [d for r in items for d in _samples_of(r, "detected_lang")]
    n_samples = sum(int(r.get("n", 1)) for r in items)
    truncated = sum(int(r.get("truncated", 0)) for r in items)
    tokens = [t for r in items for t in _samples_of(r, "tokens") if isinstance(t, (int, float))]
    return {
        "n": len(items),
        "samples": n_samples,
        "accuracy": 100 * sum(r["score"] for r in scored) / len(scored) if scored else None,
        "off_target": M.off_target_rate(detected, [items[0]["lang"]] * len(detected)) if items else None,
        "undetermined": sum(d is None for d in detected),
        "truncated": truncated,
        "no_answer": sum(e is None for r in items for e in _samples_of(r, "extracted")),
        "unparseable_gold": len(items) - len(scored),
        "mean_tokens": sum(tokens) / len(tokens) if tokens else None,
    }


def off_target_records(items: Sequence[dict]) -> list[dict]:
    """Per-item off-target shares (0–1, None when undetermined), as `score` records for bootstrapping."""
    out = []
    for r in items:
        judged = [d for d in _samples_of(r, "detected_lang") if d is not None]
        if not judged:
            continue
        share = sum(d != r["lang"] for d in judged) / len(judged)
        out.append({"model": r["model"], "benchmark": r["benchmark"], "lang": r["lang"], "id": r["id"], "score": share})
    return out


def mean_accuracy(acc: Mapping, model: str, langs: Mapping[str, Sequence[str]]) -> float | None:
    vals = [acc.get(model, {}).get(b, {}).get(l) for b, ls in langs.items() for l in ls]
    return None if any(v is None for v in vals) or not vals else sum(vals) / len(vals)


def _transfer(acc: Mapping, c: Comparison, langs: Mapping[str, Sequence[str]], in_domain, out_of_domain,
              mti_policy: str = "defined") -> dict:
    trained = {b: {l: acc[c.trained][b][l] for l in ls} for b, ls in langs.items()}
    base = {b: {l: acc[c.base][b][l] for l in ls} for b, ls in langs.items()}
    return M.transfer_metrics(trained, base, c.train_langs, in_domain, out_of_domain, mti_policy)


def summarize(items: Sequence[dict], models: Sequence[str], langs: Mapping[str, Sequence[str]],
              comparisons: Mapping[str, Comparison] | None = None, in_domain=M.IN_DOMAIN, out_of_domain=M.OUT_OF_DOMAIN,
              n_boot: int = 1000, seed: int = 0, groups: Mapping[str, Sequence[str]] | None = None,
              extra=None, mti_policy: str = "defined") -> Summary:
    """Point estimates and paired-bootstrap 95% intervals of everything the report shows.

    `groups` (observational study): paradigm -> trained names; their mean MTI gets an interval too,
    and with two groups, so does the difference of the first two. `extra(acc, transfer)` (e.g. the
    scaling fits of `xling.analysis.study`): more numbers computed from the accuracies and each comparison's
    transfer metrics, bootstrapped with the same draws; their intervals land in `Summary.extra_ci`.
    `mti_policy`: when a benchmark's MTI is None (`xling.analysis.metrics.mti`).
    """
    comparisons = dict(comparisons or {})
    cells = _nest(items, _judged_cell)
    acc = {m: {b: {l: c["accuracy"] for l, c in per_b.items()} for b, per_b in per_m.items()} for m, per_m in cells.items()}
    off = {m: {b: {l: c["off_target"] for l, c in per_b.items()} for b, per_b in per_m.items()} for m, per_m in cells.items()}
    judged = {m: {b: {l: c["judged"] for l, c in per_b.items()} for b, per_b in per_m.items()} for m, per_m in cells.items()}
    missing = [f"({m}, {b}, {l})" for m in models for b, ls in langs.items() for l in ls if acc.get(m, {}).get(b, {}).get(l) is None]
    if missing:
        raise XlingError(f"no scored items for {', '.join(missing[:6])}; cannot summarize")
    results = {name: _transfer(acc, c, langs, in_domain, out_of_domain, mti_policy) for name, c in comparisons.items()}
    group_point = group_means({n: r["mti"]["avg"] for n, r in results.items()}, groups) if groups else {}

    def statistic(a: dict) -> dict:
        out: dict = {"accuracy": a, "mean": {m: mean_accuracy(a, m, langs) for m in models}}
        per = {}
        for name, c in comparisons.items():
            r = _transfer(a, c, langs, in_domain, out_of_domain, mti_policy)
            per[name] = {k: r[k] for k in ("mti", "gen", "ti", "train_gain", "gain")}
        out["cmp"] = per
        if groups:
            out["groups"] = group_means({n: r["mti"]["avg"] for n, r in per.items()}, groups)
        if extra is not None:
            out["extra"] = extra(a, per)
        return out

    scored = [r for r in items if r.get("error") != UNPARSEABLE_GOLD]
    ci = M.bootstrap(M.ItemScores.from_records(scored), statistic, n_boot=n_boot, seed=seed) if n_boot else {}
    determined = {(m, b, l) for m, per_m in off.items() for b, per_b in per_m.items() for l, v in per_b.items()
                  if v is not None}
    off_items = [r for r in off_target_records(items) if (r["model"], r["benchmark"], r["lang"]) in determined]
    off_res = M.bootstrap(M.ItemScores.from_records(off_items),
                          lambda a: {"cell": a, "mean": {m: mean_cells(a, m) for m in models}}, n_boot=n_boot,
                          seed=seed) if n_boot and off_items else {}
    off_ci = off_res.get("cell") or {}
    compared = {}
    for name, c in comparisons.items():
        compared[name] = {"base": c.base, "train_langs": c.train_langs, "paradigm": c.paradigm, **results[name],
                          "ci": (ci.get("cmp") or {}).get(name, {})}
    group_out = {}
    if groups:
        gci = ci.get("groups") or {}
        group_out = {"mti": group_point, "ci": gci, "members": {g: list(ns) for g, ns in groups.items()}}
    mean_judged = {m: sum(judged[m][b][l] for (m2, b, l) in determined if m2 == m) for m in models}
    return Summary(list(models), {b: list(ls) for b, ls in langs.items()}, cells, acc, ci.get("accuracy") or {}, off,
                   off_ci or {}, {m: mean_accuracy(acc, m, langs) for m in models}, ci.get("mean") or {}, compared,
                   group_out, n_boot, ci.get("extra") or {}, {m: mean_cells(off, m) for m in models},
                   off_res.get("mean") or {}, judged, mean_judged)


def _judged_cell(items: Sequence[dict]) -> dict:
    """`cell_summary` plus `judged` (answers whose language was determined); the off-target rate of a cell
    judged on fewer than MIN_JUDGED answers is None (undetermined)."""
    c = cell_summary(items)
    c["judged"] = c["samples"] - c["undetermined"]
    if c["judged"] < MIN_JUDGED:
        c["off_target"] = None
    return c


def mean_cells(values: Mapping, model: str) -> float | None:
    """The mean of a model's defined cell values (e.g. off-target rates) over benchmarks and languages."""
    return M.mean_defined(v for per_l in (values.get(model) or {}).values() for v in per_l.values())


def summarize_accuracies(accuracies: Mapping, models: Sequence[str], langs: Mapping[str, Sequence[str]],
                         comparisons: Mapping[str, Comparison] | None = None, n: Mapping | None = None,
                         in_domain=M.IN_DOMAIN, out_of_domain=M.OUT_OF_DOMAIN,
                         groups: Mapping[str, Sequence[str]] | None = None, extra=None,
                         mti_policy: str = "defined") -> Summary:
    """The same summary from an accuracy table (model -> benchmark -> lang -> percent): point estimates
    only (no per-item results: no intervals, no off-target rate, no truncation counts)."""
    comparisons = dict(comparisons or {})
    acc = {m: {b: {l: accuracies.get(m, {}).get(b, {}).get(l) for l in ls} for b, ls in langs.items()} for m in models}
    missing = [f"({m}, {b}, {l})" for m in models for b, ls in langs.items() for l in ls if acc[m][b][l] is None]
    if missing:
        raise XlingError(f"no accuracy for {', '.join(missing[:6])}; cannot summarize")
    n = n or {}
    cells = {m: {b: {l: {"n": (n.get(m, {}).get(b, {}) or {}).get(l), "samples": None, "accuracy": acc[m][b][l],
                          "off_target": None, "undetermined": None, "judged": None, "truncated": None, "no_answer": None,
                          "unparseable_gold": None, "mean_tokens": None} for l in ls} for b, ls in langs.items()}
             for m in models}
    off = {m: {b: {l: None for l in ls} for b, ls in langs.items()} for m in models}
    results = {name: _transfer(acc, c, langs, in_domain, out_of_domain, mti_policy) for name, c in comparisons.items()}
    compared = {name: {"base": c.base, "train_langs": c.train_langs, "paradigm": c.paradigm, **results[name], "ci": {}}
                for name, c in comparisons.items()}
    group_out = {}
    if groups:
        group_out = {"mti": group_means({k: r["mti"]["avg"] for k, r in results.items()}, groups), "ci": {},
                     "members": {g: list(ns) for g, ns in groups.items()}}
    summary = Summary(list(models), {b: list(ls) for b, ls in langs.items()}, cells, acc, {}, off, {},
                      {m: mean_accuracy(acc, m, langs) for m in models}, {}, compared, group_out, 0, {}, {}, {},
                      has_items=False)
    return summary


def group_means(mti: Mapping[str, float | None], groups: Mapping[str, Sequence[str]]) -> dict:
    out: dict = {g: M.mean_defined(mti.get(n) for n in names) for g, names in groups.items()}
    keys = list(groups)
    if len(keys) >= 2:
        a, b = out[keys[0]], out[keys[1]]
        out[f"{keys[0]} - {keys[1]}"] = None if a is None or b is None else a - b
    return out

