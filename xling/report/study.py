"""The one analysis of a study: every evaluation, sweep, `analyze`, `observational` and `paper-replay` goes through it.

A study is a set of evaluated models: bases, and trained models (its *members*), each with the base it
is compared with, its training languages, its number of training languages X on the scaling curve
(None: off the curve) and its paradigm (RL, SFT, ...). From per-item results (or, without them, an
accuracy table) it computes:

- accuracy and off-target rate per (model, benchmark, language) — `xling.report.results.summarize`;
- per member over its base: relative gains, TI, MTI (per benchmark, avg / ID / OOD) and Gen;
- per paradigm: the mean MTI of its members (and the difference of the first two paradigms);
- where members differ in X: the Parallel Scaling Law f(X) = α·X^β fitted to MTI and to mean accuracy
  (α, β with standard errors, R²), the First-Parallel Leap (value at X=2 − value at X=1) and the
  Monolingual Generalization Gap (f(1) − value at X=1). Fewer than three distinct X ≥ `fit_from` with
  defined values: no fit, said in words.

With per-item results every number carries a paired bootstrap 95% interval: one draw of items per
replicate serves every model, language and statistic, and the power law is refitted in every replicate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from xling.analysis import metrics as M
from xling.common.console import console, fmt, fmt_ci, print_table
from xling.common.errors import XlingError

# The curves the paper printed for its parallel-scaling study (Qwen2.5-7B-Instruct, multilingual MATH500;
# docs/protocol.md#published-parallel-scaling-numbers), drawn beside a study's own fit for comparison.
PAPER_CURVES = {"mti": (2.00, 0.29), "accuracy": (56.98, 0.02)}
PAPER_LABEL = "paper (Qwen2.5-7B-Instruct, MATH500)"
METRIC_LABELS = {"mti": "MTI", "accuracy": "mean accuracy (%)"}


@dataclass
class Member:
    """A trained model of a study and what it is compared with."""

    name: str
    base: str
    train_langs: list[str]
    x: int | None = None  # training languages on the scaling curve (None: not on the curve)
    paradigm: str | None = None

    @classmethod
    def of(cls, name: str, base: str, train_langs: Sequence[str], x: int | None | str = "auto",
           paradigm: str | None = None) -> "Member":
        """`x="auto"`: the number of training languages."""
        langs = list(train_langs)
        return cls(name, base, langs, len(langs) if x == "auto" else x, paradigm or None)


# ----------------------------------------------------------------------------------------- scaling


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


def curve_members(members: Sequence[Member]) -> tuple[list[Member], str | None]:
    """The members on the scaling curve, or ([], why not) when the study has no curve.

    A study has a curve when its members differ in X; two members at one X make the curve ambiguous.
    """
    on = [m for m in members if m.x is not None]
    if len({m.x for m in on}) < 2:
        return [], None
    by_x: dict[int, list[str]] = {}
    for m in on:
        by_x.setdefault(int(m.x), []).append(m.name)
    clash = {x: ns for x, ns in by_x.items() if len(ns) > 1}
    if clash:
        x, names = sorted(clash.items())[0]
        return [], (f"no scaling curve: {' and '.join(names)} both have X = {x}; the curve takes one model per "
                    "number of training languages (set x to null for the others)")
    return on, None


def _mean_accuracy(acc: Mapping, model: str, langs: Mapping[str, Sequence[str]]) -> float | None:
    vals = [acc.get(model, {}).get(b, {}).get(l) for b, ls in langs.items() for l in ls]
    return None if not vals or any(v is None for v in vals) else sum(vals) / len(vals)


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
            mean = {m: _mean_accuracy(acc, m, langs) for pair in contrasts.values() for m in pair}
            out["contrasts"] = {label: {"gen": _diff(gen.get(a), gen.get(b)), "accuracy": _diff(mean[a], mean[b])}
                                for label, (a, b) in contrasts.items()}
        if on_curve:
            mti = {m.x: (transfer.get(m.name) or {}).get("mti", {}).get("avg") for m in on_curve}
            accuracy = {m.x: _mean_accuracy(acc, m.name, langs) for m in on_curve}
            out["scaling"] = {"mti": _scaling_numbers(scaling_of(mti, fit_from)),
                              "accuracy": _scaling_numbers(scaling_of(accuracy, fit_from))}
        return out

    return stat


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


# ------------------------------------------------------------------------------------------- study


@dataclass
class Study:
    summary: Any  # xling.report.results.Summary
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


def check_members(members: Sequence[Member], models: Sequence[str]) -> None:
    names = [m.name for m in members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise XlingError(f"model '{dupes[0]}' is listed twice as a trained model; give each member its own name")
    for m in members:
        for role, name in (("trained", m.name), ("base", m.base)):
            if name not in models:
                raise XlingError(f"{role} model '{name}' (of member '{m.name}') has no results here; models with "
                                 f"results: {', '.join(models)}")
        if m.name == m.base:
            raise XlingError(f"member '{m.name}' is compared with itself; give it another base")
        if m.x is not None and m.x < 1:
            raise XlingError(f"member '{m.name}': X (training languages, English included) must be at least 1")


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
    from xling.report import results as R

    members = list(members)
    if models is None:
        models = list(dict.fromkeys([m.base for m in members] + [m.name for m in members]))
    models = list(models)
    check_members(members, models)
    comparisons = {m.name: R.Comparison(m.name, m.base, list(m.train_langs), m.paradigm) for m in members}
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
        summary = R.summarize(items, models, langs, comparisons, n_boot=n_boot, seed=seed, **common)
    else:
        if accuracies is None:
            raise XlingError("nothing to analyze: give per-item results or an accuracy table")
        summary = R.summarize_accuracies(accuracies, models, langs, comparisons, n=n, **common)
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


# ---------------------------------------------------------------------------------------- terminal


def show(study: Study) -> None:
    """Terminal tables: accuracy and off-target (`report.show`), members, and the scaling fits."""
    from xling.report import results as R

    R.show(study.summary)
    show_members(study)
    g = study.summary.groups
    if g:
        rows = [[k, fmt_ci(v, g["ci"].get(k)), ", ".join(g["members"].get(k, []))] for k, v in g["mti"].items()]
        print_table("MTI by training paradigm (mean over models, 95% CI)", ["group", "mean MTI", "models"], rows)
    show_scaling(study)
    for note in study.notes:
        console.print(note, markup=False, style="dim")


def member_rows(study: Study) -> list[list[str]]:
    from xling.report import results as R

    s = study.summary
    rows = []
    for m in study.members:
        r = s.comparisons[m.name]
        ci = r.get("ci", {})
        langs = [fmt_ci(study.point["langs"][m.name].get(l), ((study.ci.get("langs") or {}).get(m.name) or {}).get(l), 1)
                 for l in study.table_langs]
        off, off_ci = s.mean_off_target.get(m.name), s.mean_off_target_ci.get(m.name)
        consistency = "-" if not s.has_items else R.judged_rate(
            None if off is None else 100 - off, None if not off_ci else [100 - off_ci[1], 100 - off_ci[0]],
            s.mean_off_target_judged.get(m.name, 0))
        rows.append([m.name, m.base, "+".join(m.train_langs), "-" if m.x is None else str(m.x), m.paradigm or "",
                     *langs, fmt_ci(s.mean_accuracy.get(m.name), s.mean_accuracy_ci.get(m.name), 1),
                     fmt_ci(study.point["gen"].get(m.name), (study.ci.get("gen") or {}).get(m.name), 2),
                     fmt_ci(r["mti"]["avg"], (ci.get("mti") or {}).get("avg"), 3), consistency])
    return rows


def member_columns(study: Study) -> list[str]:
    return ["member", "base", "train", "X", "paradigm", *[f"acc {l} %" for l in study.table_langs], "avg acc %",
            "Gen", "MTI avg", "on-target %"]


def contrast_rows(study: Study) -> list[list[str]]:
    rows = []
    for label, (a, b) in study.contrasts.items():
        p, ci = study.point["contrasts"][label], (study.ci.get("contrasts") or {}).get(label) or {}
        rows.append([label, f"{a} − {b}", fmt_ci(p["gen"], ci.get("gen"), 2), fmt_ci(p["accuracy"], ci.get("accuracy"), 2)])
    return rows


CONTRAST_COLUMNS = ["contrast", "members", "Δ Gen", "Δ avg acc (points)"]


def _on_target_note() -> str:
    from xling.report.results import MIN_JUDGED

    return ("Gen: the mean over benchmarks; on-target: the share of answers in the requested language (100 − off-target), "
            f"the mean over the benchmarks and languages where at least {MIN_JUDGED} answers could be judged; n: the "
            "judged answers it rests on (undetermined: no such cell).")


ON_TARGET_NOTE = _on_target_note()


def show_members(study: Study) -> None:
    if not study.members:
        return
    print_table("members: trained models vs their base (95% CI)", member_columns(study), member_rows(study),
                note=ON_TARGET_NOTE)
    if study.contrasts:
        print_table("contrasts between members (a − b, 95% CI)", CONTRAST_COLUMNS, contrast_rows(study))


def bounded_ci(ci, r: Mapping[str, Any]):
    """A fit's interval of α or of the gap as shown: a bound beyond 1,000 times the largest value fitted
    comes from bootstrap replicates whose fit diverged, so the data do not bound it there: shown as
    ±inf (metrics.json keeps the numbers)."""
    if not ci or ci[0] is None or ci[1] is None:
        return ci
    limit = 1000 * max([1.0, *(abs(y) for y in r.get("y") or [] if y is not None)])
    return [-math.inf if ci[0] < -limit else ci[0], math.inf if ci[1] > limit else ci[1]]


def scaling_rows(study: Study) -> list[list[str]]:
    rows = []
    for metric, r in (study.scaling or {}).items():
        ci = r.get("ci") or {}
        d = 3 if metric == "mti" else 2
        fit = r.get("fit") or {}
        rows.append([METRIC_LABELS[metric],
                     _with_se(r["alpha"], fit.get("alpha_se"), bounded_ci(ci.get("alpha"), r), 2),
                     _with_se(r["beta"], fit.get("beta_se"), ci.get("beta"), 3),
                     fmt(r["r2"], 3), fmt(r["english_only"], d),
                     fmt_ci(r["gap"], bounded_ci(ci.get("gap"), r), 2), fmt_ci(r["leap"], ci.get("leap"), 2)])
    return rows


SCALING_COLUMNS = ["metric", "α", "β", "R²", "X=1 actual", "gap f(1)−X1", "first leap X2−X1"]


def _with_se(value, se, ci, digits) -> str:
    if value is None:
        return "None"
    text = f"{value:.{digits}f}"
    if se is not None:
        text += f" ± {se:.{digits}f}"
    if ci:
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def show_scaling(study: Study) -> None:
    if not study.scaling:
        return
    xs = study.scaling["mti"]["x"]
    fitted = [x for x in xs if x >= study.fit_from]
    print_table(f"Parallel Scaling Law f(X) = α·X^β: points at X = {', '.join(map(str, xs))}; fitted on X = "
                f"{', '.join(map(str, fitted)) or 'none'} (X >= {study.fit_from})",
                SCALING_COLUMNS, scaling_rows(study),
                note="α, β: estimate ± standard error [bootstrap 95% CI; inf: some resampled fits diverged, so the "
                     "data do not bound it]; gap: the Monolingual Generalization Gap "
                     "f(1) − the English-only value; first leap: value(X=2) − value(X=1). "
                     f"The paper: MTI {PAPER_CURVES['mti'][0]:.2f}·X^{PAPER_CURVES['mti'][1]:.2f}, accuracy "
                     f"{PAPER_CURVES['accuracy'][0]:.2f}·X^{PAPER_CURVES['accuracy'][1]:.2f}.")


# ----------------------------------------------------------------------------------------- figures


def scaling_figure(study: Study, path: Path, title: str = "", paper_curve: bool = True) -> Path | None:
    """Figure 4: MTI and mean accuracy against X with their fits (95% CI error bars on the points) and,
    for comparison, the curve the paper printed. None when neither metric could be fitted."""
    from xling.report.plots import ScalingPanel, plot_scaling
    from xling.analysis.scaling import PowerLawFit

    s = study.summary
    panels = []
    for metric, r in (study.scaling or {}).items():
        if r.get("fit") is None:
            continue
        fit = PowerLawFit(**{k: v for k, v in r["fit"].items() if k != "predicted"})
        names = r["members"]
        xs = [x for x in r["x"] if x >= study.fit_from]
        cis = []
        for x in xs:
            name = names.get(str(x))
            if metric == "mti":
                cis.append(((s.comparisons.get(name) or {}).get("ci", {}).get("mti") or {}).get("avg"))
            else:
                cis.append(s.mean_accuracy_ci.get(name))
        ys = [r["y"][r["x"].index(x)] for x in xs]
        reference = PAPER_CURVES[metric] + (PAPER_LABEL,) if paper_curve else None
        panels.append(ScalingPanel(METRIC_LABELS[metric], xs, ys, fit, r["english_only"], cis=cis, reference=reference))
    if not panels:
        return None
    return plot_scaling(panels, path, title=title or "Parallel scaling: metric vs number of training languages X")


def figures(run_dir: Path, study: Study, observational: bool = False, paper_curve: bool = True) -> dict[str, Path]:
    """Every figure the study allows, under RUN/figures/."""
    from xling.report import results as R

    out = R.figures(run_dir, study.summary, observational=observational)
    if study.summary.has_items and study.members and not observational:
        out["off_target_figure"] = R.plot_off_target_bars(study.summary, run_dir / "figures" / "off_target.png")
    png = scaling_figure(study, run_dir / "figures" / "scaling.png", paper_curve=paper_curve) if study.scaling else None
    if png is not None:
        out["scaling_figure"] = png
    return out


# ---------------------------------------------------------------------------------------- markdown


def markdown_sections(study: Study, figures: Mapping[str, Path], run_dir: Path) -> list[str]:
    """The members and scaling sections of report.md."""
    from xling.report.results import md_table

    parts: list[str] = []
    if study.members:
        parts += ["## Members", "", "Each trained model against its base. " + ON_TARGET_NOTE + " On-target is the "
                  "language consistency of the reasoning. Brackets: bootstrap 95% intervals.", "",
                  md_table(member_columns(study), member_rows(study)), ""]
    if study.contrasts:
        parts += ["## Contrasts", "", "Differences between two members (a − b) with bootstrap 95% intervals.", "",
                  md_table(CONTRAST_COLUMNS, contrast_rows(study)), ""]
    if study.scaling:
        parts += ["## Parallel scaling", "",
                  f"f(X) = α·X^β fitted by non-linear least squares on X >= {study.fit_from} (X: training languages, "
                  "English included). α, β: estimate ± standard error [bootstrap 95% CI; inf: some resampled fits "
                  "diverged, so the data do not bound it]. The gap is the Monolingual "
                  "Generalization Gap f(1) − the English-only value; the first leap is value(X=2) − value(X=1).", "",
                  md_table(SCALING_COLUMNS, scaling_rows(study)), ""]
        rows = [[str(x), study.scaling["mti"]["members"].get(str(x), ""),
                 fmt(dict(zip(study.scaling["mti"]["x"], study.scaling["mti"]["y"])).get(x), 3),
                 fmt(dict(zip(study.scaling["accuracy"]["x"], study.scaling["accuracy"]["y"])).get(x), 2)]
                for x in sorted({int(k) for k in study.scaling["mti"]["members"]})]
        parts += [md_table(["X", "member", "MTI avg", "mean accuracy %"], rows), ""]
        if "scaling_figure" in figures:
            rel = Path(figures["scaling_figure"])
            rel = rel.relative_to(run_dir) if rel.is_relative_to(run_dir) else rel
            parts += [f"![parallel scaling]({rel.as_posix()})", "",
                      f"Dashed grey: the curve the paper printed ({PAPER_LABEL}).", ""]
    for note in study.notes:
        parts += [f"> {note}", ""]
    return parts


def write_report(run_dir: Path, study: Study, figures: Mapping[str, Path], title: str,
                 settings: Sequence[str] = ()) -> Path:
    from xling.report import results as R

    return R.write_markdown(run_dir, study.summary, figures, title=title, settings=settings,
                            extra_sections=markdown_sections(study, figures, run_dir))


# ------------------------------------------------------------------------------------ members file


MEMBER_FILE_COLUMNS = ("model", "base", "train_langs", "x", "paradigm")


def write_members(path: Path, members: Sequence[Member]) -> Path:
    """models.csv: one row per trained model (model, base, train_langs as en+ru, x, paradigm)."""
    import csv
    import io

    from xling.common.io import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MEMBER_FILE_COLUMNS)
    for m in members:
        w.writerow([m.name, m.base, "+".join(m.train_langs), "" if m.x is None else m.x, m.paradigm or ""])
    return atomic_write_text(path, buf.getvalue())


def read_members(path: str | Path) -> list[Member]:
    """Read a models.csv (see `write_members`). `x` empty: off the scaling curve; `auto`: len(train_langs)."""
    import csv
    import io
    import re

    from xling.common.io import read_text
    from xling.data.languages import LANGUAGES, unknown_language_message

    path = Path(path)
    if not path.is_file():
        raise XlingError(f"members file {path} does not exist")
    text = read_text(path)
    if not text.strip():
        raise XlingError(f"members file {path} is empty; it needs a header {','.join(MEMBER_FILE_COLUMNS)} and rows")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in ("model", "base", "train_langs") if c not in header]
    if missing:
        raise XlingError(f"members file {path} lacks column(s) {', '.join(missing)}; expected "
                         f"{','.join(MEMBER_FILE_COLUMNS)}")
    members = []
    for rec in reader:
        line = reader.line_num
        vals = {k: (rec.get(k) or "").strip() for k in MEMBER_FILE_COLUMNS}
        if not any(vals.values()):
            continue
        if not vals["model"] or not vals["base"] or not vals["train_langs"]:
            raise XlingError(f"members file {path}, line {line}: model, base and train_langs are required")
        langs = [c for c in re.split(r"[+,;\s]+", vals["train_langs"]) if c]
        bad = [c for c in langs if c not in LANGUAGES]
        if bad:
            raise XlingError(f"members file {path}, line {line}: {unknown_language_message(bad[0])}")
        x: int | None | str
        if vals["x"].lower() == "auto":
            x = "auto"
        elif vals["x"] == "":
            x = None
        else:
            try:
                x = int(vals["x"])
            except ValueError:
                raise XlingError(f"members file {path}, line {line}: x '{vals['x']}' is not a whole number "
                                 "(or empty: off the scaling curve)") from None
        members.append(Member.of(vals["model"], vals["base"], langs, x, vals["paradigm"] or None))
    if not members:
        raise XlingError(f"members file {path} has a header but no rows")
    return members
