"""A study rendered: an `xling.analysis.study.Study` -> terminal tables, figures and report.md.

- `show`: the evaluation's tables (`xling.report.results.show`), the members against their bases, the
  contrasts, the means by paradigm and the scaling fits.
- `figures`: the evaluation's figures, the off-target bars and the scaling curves with the paper's curve.
- `write_report`: report.md with the members, contrasts and scaling sections.

The numbers come from `xling.analysis.study`; nothing is computed here beyond how a bound is shown.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from xling.analysis.study import METRIC_LABELS, Study
from xling.common.console import console, fmt, fmt_ci, print_table

# The curves the paper printed for its parallel-scaling study (Qwen2.5-7B-Instruct, multilingual MATH500;
# docs/protocol.md#published-parallel-scaling-numbers), drawn beside a study's own fit for comparison.
PAPER_CURVES = {"mti": (2.00, 0.29), "accuracy": (56.98, 0.02)}
PAPER_LABEL = "paper (Qwen2.5-7B-Instruct, MATH500)"


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
    from xling.analysis.summary import MIN_JUDGED

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
