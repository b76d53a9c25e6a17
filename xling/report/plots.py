"""Figures, drawn with matplotlib's Agg backend (no display needed) and saved as PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from xling.analysis.scaling import PowerLawFit


@dataclass
class ScalingPanel:
    """One panel of the scaling figure: a metric against the number of training languages."""

    label: str  # y-axis label, e.g. "MTI"
    x: Sequence[float]  # X values, English only (1) included when known
    y: Sequence[float]
    fit: PowerLawFit
    english_only: float | None = None  # the metric at X = 1, if measured
    cis: Sequence[Sequence[float] | None] | None = None  # 95% intervals of the points in `x` (error bars)
    reference: tuple[float, float, str] | None = None  # (α, β, label): a published curve drawn for comparison


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_scaling(panels: Sequence[ScalingPanel], path: str | Path, title: str = "") -> Path:
    """The paper's Figure 4: measured points, the fitted α·X^β curve extended to X = 1, and the
    gap between the curve's value at X = 1 (expected) and the English-only run (actual)."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, p in zip(axes[0], panels):
        xs = np.asarray(p.x, dtype=float)
        ys = np.asarray(p.y, dtype=float)
        fitted = np.isin(xs, p.fit.x)
        lo, hi = min(p.fit.x), max(xs.max(), max(p.fit.x))
        grid = np.linspace(lo, hi, 200)
        r2 = f"  (R²={p.fit.r2:.3f})" if p.fit.r2 is not None else ""
        ax.plot(grid, p.fit.predict(grid), color="#1f77b4", lw=2,
                label=rf"fit  ${p.fit.alpha:.2f}\cdot X^{{{p.fit.beta:.3f}}}$" + r2)
        if lo > 1:  # the extrapolation down to English only
            back = np.linspace(1, lo, 50)
            ax.plot(back, p.fit.predict(back), color="#1f77b4", lw=1.5, ls="--")
        if p.reference is not None:
            ref_alpha, ref_beta, ref_label = p.reference
            ref_grid = np.linspace(1, hi, 200)
            ax.plot(ref_grid, ref_alpha * np.power(ref_grid, ref_beta), color="#888888", lw=1.2, ls=(0, (4, 3)),
                    label=rf"{ref_label}  ${ref_alpha:.2f}\cdot X^{{{ref_beta:.2f}}}$")
        with_ci = p.cis is not None and any(ci for ci in p.cis)
        if with_ci:
            down = [max(0.0, y - ci[0]) if ci and ci[0] is not None else 0.0 for y, ci in zip(ys, p.cis)]
            up = [max(0.0, ci[1] - y) if ci and ci[1] is not None else 0.0 for y, ci in zip(ys, p.cis)]
            ax.errorbar(xs[fitted], ys[fitted], yerr=np.array([down, up])[:, fitted], fmt="none", ecolor="#1f77b4",
                        elinewidth=1, capsize=3, zorder=2)
        ax.scatter(xs[fitted], ys[fitted], color="#1f77b4", s=40, zorder=3,
                   label="English + parallel" + (" (95% CI)" if with_ci else ""))
        if p.english_only is not None:
            expected = p.fit.predict(1.0)
            ax.scatter([1], [p.english_only], color="#d62728", marker="D", s=50, zorder=4,
                       label=f"English only (actual {p.english_only:.2f})")
            ax.scatter([1], [expected], facecolors="none", edgecolors="#d62728", marker="o", s=60, zorder=4,
                       label=f"f(1) expected {expected:.2f}")
            ax.annotate("", xy=(1, p.english_only), xytext=(1, expected),
                        arrowprops=dict(arrowstyle="<->", color="#d62728", lw=1.2))
            ax.text(1.15, (expected + p.english_only) / 2, f"gap {expected - p.english_only:+.2f}",
                    color="#d62728", va="center", fontsize=9)
        ax.set_xlabel("training languages X (English included)")
        ax.set_ylabel(p.label)
        ax.set_xticks(range(1, int(max(xs.max(), max(p.fit.x))) + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        ax.set_title(p.label)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Save a PNG atomically (a temporary file, then a rename) and close the figure."""
    import os

    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=160)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    return path
