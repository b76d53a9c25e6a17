"""Task `transfer`: gains, TI, MTI and Gen of a trained model over its base, from an accuracy table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xling.analysis import metrics as M
from xling.analysis.settings import AnalysisSection
from xling.common.config import Invalid, Recipe
from xling.common.console import console, fmt, fmt_ci, print_table
from xling.common.errors import XlingError
from xling.analysis.items import read_items
from xling.data.languages import LANGUAGES, unknown_language_message
from xling.report.table import AccuracyTable


@dataclass(kw_only=True)
class Config(AnalysisSection, Recipe):
    """Task `transfer`: one trained model against its base; the metrics' settings are
    `xling.analysis.settings.AnalysisSection`'s."""

    table: str  # accuracy table CSV: model,benchmark,lang,accuracy[,n]
    base: str  # the initial model's name in the table
    trained: str  # the trained model's name in the table
    train_langs: list[str] = field(default_factory=lambda: ["en"])  # languages the trained model was trained on
    benchmarks: list[str] = field(default_factory=list)  # restrict to these benchmarks (empty: every benchmark of the two models)
    langs: list[str] = field(default_factory=list)  # restrict to these languages (empty: every language in the table)
    items: str | None = None  # per-item JSONL (model, benchmark, lang, id, score|correct) for 95% CIs

    def check(self) -> None:
        if not self.train_langs:
            raise Invalid("train_langs", "give at least one training language, e.g. train_langs=en")
        for key in ("train_langs", "langs"):
            for code in getattr(self, key):
                if code not in LANGUAGES:
                    raise Invalid(key, unknown_language_message(code))
        super().check()
        if self.base == self.trained:
            raise Invalid("trained", "the trained and the base model are the same")


def compute(table: AccuracyTable, cfg: Config) -> tuple[dict, dict[str, list[str]]]:
    benchmarks, langs = table.comparison(cfg.base, cfg.trained, cfg.train_langs, cfg.benchmarks, cfg.langs)
    base = table.accuracies(cfg.base, benchmarks, langs)
    trained = table.accuracies(cfg.trained, benchmarks, langs)
    result = M.transfer_metrics(trained, base, cfg.train_langs, cfg.in_domain, cfg.out_of_domain, cfg.mti_policy)
    return result, langs


def intervals(cfg: Config, langs: dict[str, list[str]]) -> dict:
    """Bootstrap 95% intervals of every transfer metric from the per-item file (read column-wise)."""
    cols = read_items(cfg.items)
    bad = np.flatnonzero(cols.lacks) + 1  # record numbers, from 1
    if len(bad):
        raise XlingError(f"items file {cfg.items}: line(s) {bad[:5].tolist()} lack one of model, benchmark, lang, id, "
                         "score|correct")
    bad_score = np.flatnonzero(~cols.unparseable & ~cols.valid) + 1
    if len(bad_score):
        raise XlingError(f"items file {cfg.items}: line(s) {bad_score[:5].tolist()} have a score|correct that is not "
                         "true, false or a number from 0 to 1")
    # items whose gold answer cannot be parsed: the accuracy table leaves those out too
    keep = cols.selected((cfg.base, cfg.trained), langs) & ~cols.unparseable
    items = cols.item_scores(keep)
    check_cells(items, cfg, langs)
    return M.bootstrap(items, statistic_of(cfg), n_boot=cfg.n_boot, seed=cfg.seed)


def check_cells(items, cfg: Config, langs: dict[str, list[str]]) -> None:
    """Every (model, benchmark, language) cell of the comparison has items (`items.accuracies()`)."""
    have = items.accuracies()
    missing = [f"({m}, {b}, {lang})" for m in (cfg.base, cfg.trained) for b, ls in langs.items()
               for lang in ls if lang not in have.get(m, {}).get(b, {})]
    if missing:
        raise XlingError(f"items file {cfg.items} has no items for {', '.join(missing[:6])}; intervals need every cell")


def statistic_of(cfg: Config):
    """What `intervals` bootstraps: one replicate's accuracies -> the transfer metrics of trained over base."""

    def statistic(acc: dict) -> dict:
        r = M.transfer_metrics(acc[cfg.trained], acc[cfg.base], cfg.train_langs, cfg.in_domain, cfg.out_of_domain,
                                cfg.mti_policy)
        return {k: r[k] for k in ("gain", "mti", "gen", "ti", "train_gain")}

    return statistic


def show(result: dict, langs: dict[str, list[str]], table: AccuracyTable, cfg: Config, ci: dict | None) -> None:
    ci = ci or {}
    for b, ls in langs.items():
        rows = []
        for lang in ls:
            role = "train" if lang in cfg.train_langs else "unseen"
            ti = result["ti"][b].get(lang)
            rows.append([
                lang, role,
                fmt(table.get(cfg.base, b, lang).accuracy, 1),
                fmt(table.get(cfg.trained, b, lang).accuracy, 1),
                fmt_ci(result["gain"][b][lang], ci.get("gain", {}).get(b, {}).get(lang), 3),
                "" if role == "train" else fmt_ci(ti, ci.get("ti", {}).get(b, {}).get(lang)),
            ])
        print_table(f"{b}: {cfg.trained} vs {cfg.base} (train: {','.join(cfg.train_langs)})",
                    ["lang", "role", "base %", "trained %", "rel. gain", "TI"], rows)
    rows = [[b, fmt_ci(result["train_gain"][b], ci.get("train_gain", {}).get(b)),
             fmt_ci(result["mti"][b], ci.get("mti", {}).get(b)),
             fmt_ci(result["gen"][b], ci.get("gen", {}).get(b), 2)] for b in langs]
    print_table("per benchmark", ["benchmark", "train-lang gain", "MTI", "Gen"], rows,
                note="None: undefined (zero base accuracy), left out of every mean." +
                (" Brackets: bootstrap 95% interval." if ci else ""))
    m = result["mti"]
    console.print(f"MTI  avg {fmt_ci(m['avg'], ci.get('mti', {}).get('avg'))}   "
                  f"ID {fmt_ci(m['id'], ci.get('mti', {}).get('id'))}   "
                  f"OOD {fmt_ci(m['ood'], ci.get('mti', {}).get('ood'))}", markup=False)


def run(cfg: Config, run_dir: Path) -> dict:
    table = AccuracyTable.read(cfg.table)
    result, langs = compute(table, cfg)
    ci = intervals(cfg, langs) if cfg.items else None
    show(result, langs, table, cfg, ci)
    out = {"base": cfg.base, "trained": cfg.trained, "train_langs": cfg.train_langs, "langs": langs, **result}
    if ci is not None:
        out["ci"] = ci
    return out
