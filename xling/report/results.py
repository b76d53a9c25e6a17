"""An evaluation's results rendered: a `xling.analysis.summary.Summary` -> files, terminal tables, figures and report.md.

- `write_outputs`: accuracy.csv (the `xling.report.table` format, with n), off_target.csv, items.jsonl.
- `show`: terminal tables. `figures`: PNGs — accuracy per language with CI error bars (the paper's
  Figure 2), a TI heatmap over languages × models (Figure 8; undefined cells marked None), and for the
  observational study MTI per model by paradigm. `write_markdown`: report.md embedding them.

Nothing is computed here beyond a table's mean row: the numbers come from `xling.analysis.summary`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from xling.analysis import metrics as M
from xling.analysis.summary import MIN_JUDGED, Summary
from xling.common.console import fmt, fmt_ci, print_table
from xling.common.io import atomic_write_jsonl, atomic_write_text
from xling.data.languages import LANGUAGES
from xling.report.table import Row, write_table

BASE_COLOR = "#9aa5b1"
TRAINED_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
PARADIGM_COLORS = {"RL": "#1f77b4", "SFT": "#ff7f0e", "RFT": "#2ca02c", "distill": "#9467bd"}


def _ti_rows(summary, benchmark: str) -> list[list[str]]:
    """One row per trained model: 'train' for its training languages, else TI [95% CI]."""
    rows = []
    for name, r in summary.comparisons.items():
        ci = (r.get("ci", {}).get("ti") or {}).get(benchmark) or {}
        rows.append([name, *[("train" if l in r["train_langs"] else fmt_ci(r["ti"][benchmark].get(l), ci.get(l), 2))
                             for l in summary.langs[benchmark]]])
    return rows


def judged_rate(value: float | None, ci, judged: int | None, digits: int = 1) -> str:
    """A rate judged on `judged` answers, e.g. `12.5 [5.0, 20.0] (n=40)`; `undetermined (n=3)` when None."""
    count = "" if judged is None else f" (n={judged})"
    if value is None:
        return "undetermined" + count
    return fmt_ci(value, ci, digits) + count


# ------------------------------------------------------------------------------------- files


def write_outputs(run_dir: Path, items: Sequence[dict], summary: Summary) -> dict[str, Path]:
    rows = []
    off_lines = ["model,benchmark,lang,off_target,judged,n,truncated"]
    for m in summary.models:
        for b, ls in summary.langs.items():
            for l in ls:
                c = summary.cells[m][b][l]
                rows.append(Row(m, b, l, c["accuracy"], c["n"]))
                judged = c["judged"]
                rate = "" if c["off_target"] is None else f"{c['off_target']:.4f}".rstrip("0").rstrip(".")
                off_lines.append(f"{_csv(m)},{_csv(b)},{l},{rate},{judged},{c['n']},{c['truncated']}")
    return {
        "accuracy": write_table(run_dir / "accuracy.csv", rows),
        "off_target": atomic_write_text(run_dir / "off_target.csv", "\n".join(off_lines) + "\n"),
        "items": atomic_write_jsonl(run_dir / "items.jsonl", items),
    }


def _csv(text: str) -> str:
    return f'"{text}"' if any(ch in text for ch in ',"\n') else text


# ------------------------------------------------------------------------------------ terminal


def _cell(value, ci, digits=1) -> str:
    return fmt_ci(value, ci, digits)


def show(summary: Summary) -> None:
    for b, ls in summary.langs.items():
        rows = []
        for l in ls:
            row = [l]
            for m in summary.models:
                row.append(_cell(summary.accuracy[m][b][l], summary.accuracy_ci.get(m, {}).get(b, {}).get(l)))
            rows.append(row)
        rows.append(["mean", *[fmt(M.mean_defined(summary.accuracy[m][b][l] for l in ls), 1) for m in summary.models]])
        if not summary.has_items:
            print_table(f"{b}: accuracy %", ["lang", *summary.models], rows)
            continue
        trunc = [f"{m}: {sum(summary.cells[m][b][l]['truncated'] for l in ls)}" for m in summary.models]
        print_table(f"{b}: accuracy % [95% CI]", ["lang", *summary.models], rows,
                    note="truncated generations (hit max_tokens): " + ", ".join(trunc))
        print_table(f"{b}: off-target rate % [95% CI] (n: answers whose language was judged)", ["lang", *summary.models],
                    _off_rows(summary, b), note=OFF_TARGET_NOTE)
    if summary.comparisons:
        show_comparisons(summary)


OFF_TARGET_NOTE = ("share of the judged answers whose detected language is not the requested one (answers too short "
                   f"for the language identifier are not judged); undetermined: fewer than {MIN_JUDGED} judged answers")


def _off_rows(summary: Summary, benchmark: str) -> list[list[str]]:
    return [[l, *[judged_rate(summary.off_target[m][benchmark][l],
                              summary.off_target_ci.get(m, {}).get(benchmark, {}).get(l),
                              summary.cells[m][benchmark][l].get("judged")) for m in summary.models]]
            for l in summary.langs[benchmark]]


def show_comparisons(summary: Summary) -> None:
    benches = list(summary.langs)
    rows = []
    for name, r in summary.comparisons.items():
        ci = r.get("ci", {})
        row = [name, r["base"], ",".join(r["train_langs"])]
        row += [fmt_ci(r["mti"][b], (ci.get("mti") or {}).get(b)) for b in benches]
        row += [fmt_ci(r["mti"][k], (ci.get("mti") or {}).get(k)) for k in ("avg", "id", "ood")]
        row += [fmt_ci(r["gen"][b], (ci.get("gen") or {}).get(b), 2) for b in benches]
        rows.append(row)
    print_table("transfer over the base model (95% CI)",
                ["trained", "base", "train", *[f"MTI {b}" for b in benches], "MTI avg", "MTI ID", "MTI OOD",
                 *[f"Gen {b}" for b in benches]], rows,
                note="None: undefined (zero base accuracy or zero training-set gain), left out of every mean.")
    for b in benches:
        print_table(f"{b}: transferability index TI per language", ["trained", *summary.langs[b]],
                    _ti_rows(summary, b))


# -------------------------------------------------------------------------------------- figures


def _err(values: Sequence[float | None], cis: Sequence[Sequence[float] | None]):
    import numpy as np

    lo, hi = [], []
    for v, ci in zip(values, cis):
        if v is None or not ci or ci[0] is None:
            lo.append(0.0)
            hi.append(0.0)
        else:
            lo.append(max(0.0, v - ci[0]))
            hi.append(max(0.0, ci[1] - v))
    return np.array([lo, hi])


def plot_accuracy_bars(summary: Summary, path: Path, models: Sequence[str] | None = None,
                       base: str | None = None, title: str = "") -> Path:
    """Figure 2: accuracy per language, base vs trained models, grouped bars with 95% CI error bars."""
    return plot_bars(summary, summary.accuracy, summary.accuracy_ci, path, "accuracy (%)",
                     title or "Accuracy per language (error bars: bootstrap 95% CI)", models, base)


def plot_off_target_bars(summary: Summary, path: Path, models: Sequence[str] | None = None, title: str = "") -> Path:
    """Off-target rate per language and model (grouped bars, 95% CI error bars)."""
    base = next(iter({r["base"] for r in summary.comparisons.values()}), None)
    order = list(models or ([base] if base else []) + [m for m in summary.models if m != base])
    return plot_bars(summary, summary.off_target, summary.off_target_ci, path, "off-target (%)",
                     title or "Off-target rate per language: answers not in the requested language "
                              "(error bars: bootstrap 95% CI)", order, base,
                     missing=f"×: undetermined (fewer than {MIN_JUDGED} answers whose language could be judged)")


def plot_bars(summary: Summary, values: Mapping, cis: Mapping, path: Path, ylabel: str, title: str,
              models: Sequence[str] | None = None, base: str | None = None, missing: str = "×: no value") -> Path:
    """Grouped bars of a per-cell percentage, one panel per benchmark, one bar per model and language. A cell
    without a value gets no bar but a × on the axis, explained under the figure by `missing`."""
    import numpy as np

    from xling.report.plots import _pyplot, save_figure

    plt = _pyplot()
    models = list(models or summary.models)
    benches = list(summary.langs)
    width_langs = max(len(ls) for ls in summary.langs.values())
    width_in = min(15.0, max(6.5, 0.5 * width_langs * (1 + 0.3 * len(models)) + 1.5))
    fig, axes = plt.subplots(len(benches), 1, figsize=(width_in, 3.3 * len(benches) + 0.6), squeeze=False)
    k = len(models)
    width = min(0.8 / k, 0.38)
    colors = {}
    trained_i = 0
    for m in models:
        if m == base:
            colors[m] = BASE_COLOR
        else:
            colors[m] = TRAINED_COLORS[trained_i % len(TRAINED_COLORS)]
            trained_i += 1
    unset = False
    for ax, b in zip(axes[:, 0], benches):
        ls = summary.langs[b]
        xs = np.arange(len(ls))
        top = 0.0
        for j, m in enumerate(models):
            vals = [values[m][b][l] for l in ls]
            err = _err(vals, [cis.get(m, {}).get(b, {}).get(l) for l in ls])
            heights = [v or 0.0 for v in vals]
            pos = xs + (j - (k - 1) / 2) * width
            ax.bar(pos, heights, width, yerr=err, capsize=2.5, color=colors[m],
                   edgecolor="white", linewidth=0.5, error_kw=dict(elinewidth=0.9, ecolor="#333333"),
                   label=m + (" (base)" if m == base and "base" not in m.lower() else ""))
            gaps = [x for x, v in zip(pos, vals) if v is None]
            if gaps:
                ax.plot(gaps, [0.0] * len(gaps), linestyle="none", marker="x", markersize=5, color=colors[m],
                        clip_on=False, zorder=3)
                unset = True
            top = max(top, max((h + e for h, e in zip(heights, err[1])), default=0.0))
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{l}\n{LANGUAGES[l].name}" if l in LANGUAGES else l for l in ls], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, min(100.0, max(5.0, top * 1.15)) if top < 87 else 100.0)
        ax.set_title(b, fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0, 0].legend(fontsize=8, ncol=min(4, k), loc="upper right", frameon=False)
    fig.suptitle(title, fontsize=11)
    if unset:
        fig.text(0.01, 0.005, missing, fontsize=7, color="#555555", va="bottom")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
    else:
        fig.tight_layout()
    return save_figure(fig, path)


def plot_ti_heatmap(ti: Mapping[str, Mapping[str, float | None]], langs: Sequence[str],
                    train_langs: Mapping[str, Sequence[str]], path: Path, title: str = "") -> Path:
    """Figure 8: TI per (model, language); training languages marked 'train', undefined cells 'None'."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    from xling.report.plots import _pyplot, save_figure

    plt = _pyplot()
    models = list(ti)
    grid = np.full((len(models), len(langs)), np.nan)
    values = []
    for i, m in enumerate(models):
        for j, l in enumerate(langs):
            v = ti[m].get(l)
            if v is not None and l not in train_langs.get(m, ()):
                grid[i, j] = v
                values.append(v)
    vmin = min(values + [0.0])
    vmax = max(values + [2.0])
    norm = TwoSlopeNorm(vmin=vmin, vcenter=1.0, vmax=vmax)
    fig, ax = plt.subplots(figsize=(max(5.5, 0.62 * len(langs) + 3.2), max(2.4, 0.45 * len(models) + 1.9)))
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
    for i, m in enumerate(models):
        for j, l in enumerate(langs):
            if l in train_langs.get(m, ()):
                ax.text(j, i, "train", ha="center", va="center", fontsize=7, color="#555555", style="italic")
            elif np.isnan(grid[i, j]):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#bbbbbb", lw=0))
                ax.text(j, i, "None", ha="center", va="center", fontsize=7, color="#555555")
            else:
                v = grid[i, j]
                dark = norm(v) < 0.15 or norm(v) > 0.85
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(langs)))
    ax.set_xticklabels(langs)
    ax.set_yticks(range(len(models)))
    ax.set_yticklabels(models, fontsize=8)
    cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cbar.set_label("TI", fontsize=8)
    ax.set_title(title or "Transferability index per language", fontsize=10)
    fig.text(0.01, 0.01, "TI: relative gain / mean gain on the training languages (1 = as much).\n"
             "None: undefined (zero base accuracy).", fontsize=7, color="#555555", va="bottom")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return save_figure(fig, path)


def plot_mti_by_paradigm(summary: Summary, path: Path, title: str = "") -> Path:
    """Observational study: each trained model's MTI (avg) with its 95% CI, coloured by paradigm,
    and the paradigm means with their intervals."""
    import numpy as np

    from xling.report.plots import _pyplot, save_figure

    plt = _pyplot()
    names = list(summary.comparisons)
    names.sort(key=lambda n: (str(summary.comparisons[n].get("paradigm")), n))
    vals = [summary.comparisons[n]["mti"]["avg"] for n in names]
    cis = [((summary.comparisons[n].get("ci") or {}).get("mti") or {}).get("avg") for n in names]
    paradigms = [str(summary.comparisons[n].get("paradigm")) for n in names]
    palette = dict(PARADIGM_COLORS)
    extra = iter(TRAINED_COLORS[4:])
    for p in paradigms:
        palette.setdefault(p, next(extra, "#7f7f7f"))
    fig, ax = plt.subplots(figsize=(max(5.5, 0.7 * len(names) + 3), 4.0))
    xs = np.arange(len(names))
    ax.bar(xs, [v or 0.0 for v in vals], yerr=_err(vals, cis), capsize=3, color=[palette[p] for p in paradigms],
           edgecolor="white", error_kw=dict(elinewidth=0.9, ecolor="#333333"))
    for x, v in zip(xs, vals):
        if v is None:
            ax.text(x, 0, "None", ha="center", va="bottom", fontsize=8, color="#555555")
    ax.axhline(1.0, color="#555555", lw=0.8, ls=":")
    groups = summary.groups.get("mti", {}) if summary.groups else {}
    gci = summary.groups.get("ci", {}) if summary.groups else {}
    labels = []
    for p in dict.fromkeys(paradigms):
        mean, ci = groups.get(p), gci.get(p)
        idx = [i for i, q in enumerate(paradigms) if q == p]
        if mean is not None:
            ax.hlines(mean, min(idx) - 0.45, max(idx) + 0.45, colors=palette[p], lw=1.8, linestyles="--")
        labels.append(p + ("" if mean is None else f": mean {mean:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")))
    defined = [v for v in vals if v is not None] or [0.0]
    span = max(1.0, max(abs(v) for v in defined))
    low, high = min(0.0, min(defined)) - 0.6 * span, max(defined) + 0.9 * span
    clipped = any(ci and (ci[0] < low or ci[1] > high) for ci in cis)
    ax.set_ylim(low, high)
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("MTI (avg over benchmarks)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[p]) for p in dict.fromkeys(paradigms)]
    ax.legend(handles, labels, fontsize=8, frameon=False, loc="upper left", title="paradigm (dashed: mean [95% CI])",
              title_fontsize=8)
    if clipped:
        ax.text(1.0, -0.18 if len(names) > 4 else -0.12, "some intervals extend beyond the axes", transform=ax.transAxes,
                ha="right", fontsize=7, color="#555555")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "MTI per model (error bars: bootstrap 95% CI; dotted: MTI = 1)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def figures(run_dir: Path, summary: Summary, observational: bool = False) -> dict[str, Path]:
    """The accuracy bars (or, for the observational study, MTI per model by paradigm) and a TI heatmap per
    benchmark, under RUN/figures/. The scaling and off-target figures are `xling.report.study.figures`'."""
    out: dict[str, Path] = {}
    fig_dir = run_dir / "figures"
    bases = {r["base"] for r in summary.comparisons.values()}
    if not observational:
        base = next(iter(bases)) if len(bases) == 1 else None
        order = ([base] if base else []) + [m for m in summary.models if m != base]
        out["accuracy_figure"] = plot_accuracy_bars(summary, fig_dir / "accuracy.png", order, base)
    else:
        out["mti_figure"] = plot_mti_by_paradigm(summary, fig_dir / "mti.png")
    if summary.comparisons:
        for b, ls in summary.langs.items():
            ti = {n: r["ti"][b] for n, r in summary.comparisons.items()}
            train = {n: r["train_langs"] for n, r in summary.comparisons.items()}
            out[f"ti_heatmap_{b}"] = plot_ti_heatmap(ti, ls, train, fig_dir / f"ti_{b}.png",
                                                     title=f"{b}: transferability index (TI) per language")
    return out


# ------------------------------------------------------------------------------------- markdown


def md_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def settings_lines(cfg, backend: str) -> list[str]:
    g = cfg.gen
    return [f"backend `{backend}`, temperature {g.temperature}, top-p {g.top_p}, max tokens {g.max_tokens}, "
            f"seed {cfg.seed}", "samples per question: " + ", ".join(f"{b} {g.samples(b)}" for b in cfg.benchmarks),
            f"prompt `{cfg.variant}`" + (" with the prompt-hacking prefix" if cfg.prefix else "")
            + (f", chat template from `{cfg.template_from}`" if getattr(cfg, "template_from", None) else ""),
            f"language ID `{cfg.score.langid}` (min {cfg.score.min_chars} letters); bootstrap {cfg.n_boot} replicates, "
            "paired over items"
            + (f"; MTI policy `{cfg.mti_policy}`" if getattr(cfg, "mti_policy", "defined") != "defined" else "")]


def write_markdown(run_dir: Path, summary: Summary, figures: Mapping[str, Path], title: str = "Evaluation",
                   settings: Sequence[str] = (), extra_sections: Sequence[str] = ()) -> Path:
    """report.md: settings, tables (accuracy, off-target, truncations, transfer), the figures, and
    `extra_sections` (markdown lines: a study's members and scaling) before the list of files."""
    parts = [f"# {title}", ""]
    if settings:
        parts += [*(f"- {s}" for s in settings), ""]
    rel = {k: Path(v).relative_to(run_dir) if Path(v).is_relative_to(run_dir) else Path(v) for k, v in figures.items()}
    if "accuracy_figure" in rel:
        parts += ["## Accuracy per language", "", f"![accuracy per language]({rel['accuracy_figure'].as_posix()})", ""]
    parts += ["## Accuracy (%) with bootstrap 95% intervals" if summary.has_items else "## Accuracy (%)", ""]
    for b, ls in summary.langs.items():
        rows = [[l, *[_cell(summary.accuracy[m][b][l], summary.accuracy_ci.get(m, {}).get(b, {}).get(l))
                      for m in summary.models]] for l in ls]
        rows.append(["**mean**", *[fmt(M.mean_defined(summary.accuracy[m][b][l] for l in ls), 1) for m in summary.models]])
        n = summary.cells[summary.models[0]][b][ls[0]]["n"]
        parts += [f"**{b}**" + (f" ({n} problems per language)" if n else ""), "",
                  md_table(["lang", *summary.models], rows), ""]
    if summary.has_items:
        parts += _item_sections(summary, rel)
    parts += _transfer_sections(summary, rel)
    parts += list(extra_sections)
    parts += _files_section(summary)
    return atomic_write_text(run_dir / "report.md", "\n".join(parts))


def _item_sections(summary: Summary, rel: Mapping[str, Path]) -> list[str]:
    parts = ["## Off-target rate (%)", "",
             "Share of the judged answers whose detected language is not the requested one, with bootstrap 95% "
             f"intervals; n: the answers whose language the identifier could judge. A cell judged on fewer than "
             f"{MIN_JUDGED} answers is undetermined.", ""]
    for b, ls in summary.langs.items():
        parts += [f"**{b}**", "", md_table(["lang", *summary.models], _off_rows(summary, b)), ""]
    if "off_target_figure" in rel:
        parts += [f"![off-target rate per language]({rel['off_target_figure'].as_posix()})", ""]
    rows = [[m, b, sum(summary.cells[m][b][l]["truncated"] for l in ls), sum(summary.cells[m][b][l]["samples"] for l in ls),
             fmt(M.mean_defined(summary.cells[m][b][l]["mean_tokens"] for l in ls), 0)]
            for m in summary.models for b, ls in summary.langs.items()]
    parts += ["## Truncated generations", "", "Generations that ran out of max tokens (finish reason `length`).", "",
              md_table(["model", "benchmark", "truncated", "samples", "mean tokens"], rows), ""]
    return parts


def _transfer_sections(summary: Summary, rel: Mapping[str, Path]) -> list[str]:
    parts: list[str] = []
    if summary.comparisons:
        benches = list(summary.langs)
        parts += ["## Transfer over the base model", "",
                  "MTI: mean transferability index over the languages not trained on (None: undefined). "
                  "Gen: 100 × mean (Acc_trained − Acc_base) / (1 − Acc_base). Brackets: bootstrap 95% intervals.", ""]
        rows = []
        for name, r in summary.comparisons.items():
            ci = r.get("ci", {})
            rows.append([name, r.get("paradigm") or "", r["base"], ",".join(r["train_langs"]),
                         *[fmt_ci(r["mti"][k], (ci.get("mti") or {}).get(k)) for k in (*benches, "avg", "id", "ood")],
                         *[fmt_ci(r["gen"][b], (ci.get("gen") or {}).get(b), 2) for b in benches]])
        cols = ["trained", "paradigm", "base", "train", *[f"MTI {b}" for b in benches], "MTI avg", "MTI ID", "MTI OOD",
                *[f"Gen {b}" for b in benches]]
        if not any(r.get("paradigm") for r in summary.comparisons.values()):
            cols.pop(1)
            rows = [row[:1] + row[2:] for row in rows]
        parts += [md_table(cols, rows), ""]
        if summary.groups:
            g = summary.groups
            rows = [[k, fmt_ci(v, g["ci"].get(k)), ", ".join(g["members"].get(k, []))] for k, v in g["mti"].items()]
            parts += ["### By training paradigm", "", md_table(["group", "mean MTI [95% CI]", "models"], rows), ""]
        if "mti_figure" in rel:
            parts += [f"![MTI per model]({rel['mti_figure'].as_posix()})", ""]
        for b in benches:
            parts += [f"**{b}: TI per language**", "", md_table(["trained", *summary.langs[b]], _ti_rows(summary, b)),
                      ""]
            key = f"ti_heatmap_{b}"
            if key in rel:
                parts += [f"![TI heatmap {b}]({rel[key].as_posix()})", ""]
    return parts


def _files_section(summary: Summary) -> list[str]:
    if not summary.has_items:
        return ["## Files", "", "- `accuracy.csv`: the accuracy table", "- `metrics.json`: every number above", ""]
    return ["## Files", "", "- `accuracy.csv`: the accuracy table (`python run.py transfer table=...`)",
              "- `items.jsonl`: per-item records (`transfer items=...` for intervals)",
              "- `off_target.csv`, `metrics.json`, `completions/` (raw generations), `scored/`", ""]
