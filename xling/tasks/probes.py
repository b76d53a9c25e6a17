"""Task `probes`: what training changed inside a model, per language (the ICLR-2026 mechanism probes).

    python run.py probes base=Qwen/Qwen2.5-1.5B 'models=[{name: RL-de, adapter: runs/grpo-de/final}]' \
        benchmark=mgsm path=../shared/data/mgsm langs=en,zh,de,ja limit=100

For a base model and one or more trained models (hub ids, folders, LoRA adapters on the base: the
model specs and checks of `evaluate`), on a benchmark's problems per language (`xling.evaluation.probes`):
- perplexity of the problems (the question text);
- self-BLEU of `samples` answers sampled per problem (through evaluation's resumable completion
  cache: `cache=` shares it with an `evaluate` run of the same settings);
- drift of the final layer's hidden states over the rendered prompt, h_trained − h_base, projected
  with one PCA over every setup and language.
Forward passes are stored per model and language (`probes/<model>/passes.jsonl`, a resumable store
with one record per language, and its hidden states in a `.npy` file written atomically before
it): an interrupted run resumes, a re-run recomputes nothing. Run folder: metrics.json,
report.md, figures/ (perplexity.png, self_bleu.png, drift_norm.png, drift_pca.png).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

from xling.common.config import Invalid, Recipe
from xling.common.console import console, fmt, fmt_ci, print_table
from xling.data.languages import LANGUAGES
from xling.evaluation.settings import EvalSection, Extra, GenConfig
from xling.evaluation.models import ModelSpec, default_name


@dataclass(kw_only=True)
class Config(EvalSection, Recipe):
    """Task `probes`: the keys every evaluation has (`xling.evaluation.settings.EvalSection`: langs, limit,
    template_from, prefix, gen, cache) and the probes'."""

    limit: int | None = 100
    gen: GenConfig = field(default_factory=lambda: GenConfig(max_tokens=1024))
    base: str  # the initial model: hub id, local folder, or 'tiny'
    base_name: str = "base"  # the base model's label in tables
    models: list[Extra] = field(default_factory=list)  # trained models: {name, adapter (on base) and/or model}
    benchmark: str = "mgsm"  # the benchmark whose problems are the probes' prompts
    path: str | None = None  # a local copy of the benchmark (else the hub)
    samples: int = 4  # answers sampled per problem (self-BLEU)
    variant: Literal["paper", "consistency", "bare"] = "paper"  # prompt wording (xling.data.prompts)
    pool: Literal["mean", "last"] = "mean"  # hidden states: mean over the prompt's tokens, or its last token
    batch_size: int = 8  # texts per forward pass
    max_length: int = 1024  # tokens per text in forward passes (longer ones are cut)
    n_boot: int = 1000  # bootstrap replicates for every 95% interval
    plots: bool = True  # draw the figures (figures/*.png)

    def check(self) -> None:
        if not self.models:
            raise Invalid("models", "give at least one trained model, e.g. models=[{name: RL, adapter: DIR}]")
        for i, e in enumerate(self.models):
            if not e.adapter and not e.model:
                raise Invalid(f"models[{i}]", "give the model= or the adapter= (on base) of this entry")
        names = [self.base_name, *(e.name for e in self.models)]
        if len(set(names)) != len(names):
            raise Invalid("models", "every model needs its own name (base_name included)")
        super().check()
        if self.samples < 2:
            raise Invalid("samples", "self-BLEU compares samples with each other: at least 2")
        for key in ("batch_size", "max_length"):
            if getattr(self, key) < 1:
                raise Invalid(key, "must be at least 1")
        from xling.common.checks import n_boot_problem

        if (problem := n_boot_problem(self.n_boot)) is not None:
            raise Invalid("n_boot", problem)
        if self.gen.temperature <= 0:
            raise Invalid("gen.temperature", "self-BLEU needs sampled answers: a temperature above 0")


def model_specs(cfg: Config) -> list[ModelSpec]:
    specs = [ModelSpec(cfg.base_name, cfg.base, None, cfg.template_from, "base", [])]
    for e in cfg.models:
        specs.append(ModelSpec(e.name, e.model or cfg.base, e.adapter, cfg.template_from, "trained",
                               list(e.train_langs)))
    return specs


def preflight(cfg: Config, specs: list[ModelSpec]) -> tuple[str, dict]:
    """Backend, benchmark languages, data, models and adapters: every check before anything runs."""
    from xling.generate import resolve_backend
    from xling.evaluation.benchmarks import benchmark_langs, load_benchmarks
    from xling.evaluation.models import check_model, check_paths, materialize

    backend = resolve_backend(cfg.gen.backend, "gen.backend")
    data_paths = {cfg.benchmark: cfg.path} if cfg.path else {}
    per_bench = benchmark_langs([cfg.benchmark], list(cfg.langs), data_paths)
    for spec in specs:
        check_paths(spec)
    seen: set = set()
    for spec in specs:
        spec.model = materialize(spec.model)
        if spec.identity not in seen:
            seen.add(spec.identity)
            check_model(spec, backend, cfg.gen.max_lora_rank)
    return backend, load_benchmarks(per_bench, data_paths, cfg.limit)


# -- forward passes (perplexity, hidden states), one unit per model and language -----------------------

def unit_key(spec: ModelSpec, cfg: Config) -> str:
    from xling.common.store import IN_NAMES, fingerprint
    from xling.generate.completions import local_fingerprint, slug
    from xling.generate.core import cuda_available

    settings = {"model": spec.model, "model_files": local_fingerprint(spec.model),
                "adapter": str(Path(spec.adapter).resolve()) if spec.adapter else None,
                "adapter_files": local_fingerprint(spec.adapter), "template_from": spec.template_from,
                "prefix": cfg.prefix, "variant": cfg.variant, "pool": cfg.pool, "max_length": cfg.max_length,
                "dtype": cfg.gen.dtype, "device": "cuda" if cuda_available() else "cpu"}
    return f"{slug(default_name(spec.model, spec.adapter))}-{fingerprint(settings, IN_NAMES)}"


PASSES = "passes.jsonl"  # a unit folder's store: one record per language, naming its hidden states' file


def passes_store(folder: Path):
    """The forward passes of one model (`probes/<unit key>/`): a `xling.common.store` keyed by language whose
    records hold the problems' ids, their (nll, tokens) and the name of the .npy file of their hidden states."""
    from xling.common.store import Store

    return Store(folder / PASSES, key="lang", valid=lambda rec: isinstance(rec.get("hidden"), str))


def forward_passes(spec: ModelSpec, cfg: Config, per_lang: dict, folder: Path) -> dict[str, dict]:
    """lang -> {"ids", "nll": [[nll, tokens], ...], "hidden": array}; computed once per unit, then read back.

    A language's hidden states are written first (atomically, in a file named after its problems' ids),
    then its record is appended: a record is reused only for the same problems and with its file there."""
    import io as stdio

    import numpy as np

    from xling.common.io import atomic_write_bytes
    from xling.common.store import IN_NAMES, fingerprint
    from xling.data.prompts import build_messages
    from xling.evaluation.probes import hidden_states, token_nll

    store = passes_store(folder)
    out: dict[str, dict] = {}
    todo = []
    for lang, examples in per_lang.items():
        ids = [ex.id for ex in examples]
        rec = store.get(lang)
        if rec is None or rec.get("ids") != ids or not (folder / rec["hidden"]).is_file():
            todo.append(lang)
        else:
            out[lang] = {**rec, "hidden": np.load(folder / rec["hidden"])}
    if todo:
        from xling.generate.hf import HFGenerator

        console.print(f"probes: forward passes of {spec.name} in {', '.join(todo)}", markup=False)
        gen = HFGenerator(spec.model, spec.adapter, template_from=spec.template_from, dtype=cfg.gen.dtype)
        try:
            for lang in todo:
                examples = per_lang[lang]
                ids = [ex.id for ex in examples]
                nll = token_nll(gen.net, gen.tokenizer, [ex.question for ex in examples], batch_size=cfg.batch_size,
                                max_length=cfg.max_length)
                prompts = [gen.render(build_messages(ex, prefix=cfg.prefix, variant=cfg.variant)) for ex in examples]
                hidden = hidden_states(gen.net, gen.tokenizer, prompts, pool=cfg.pool, batch_size=cfg.batch_size,
                                       max_length=cfg.max_length)
                buf = stdio.BytesIO()
                np.save(buf, hidden)
                name = f"{lang}.{fingerprint(ids, IN_NAMES)}.npy"
                atomic_write_bytes(folder / name, buf.getvalue())
                rec = {"model": spec.name, "lang": lang, "ids": ids, "nll": [[s, n] for s, n in nll], "hidden": name}
                store.append([rec])  # last: it marks the unit done
                for old in folder.glob(f"{lang}.*.npy"):  # other problems' states, no record names them now
                    if old.name != name:
                        old.unlink(missing_ok=True)
                out[lang] = {**rec, "hidden": hidden}
        finally:
            gen.close()
    return out


# -- the metrics ----------------------------------------------------------------------------------------

def perplexity_table(passes: dict, cfg: Config) -> dict:
    from xling.evaluation.probes import corpus_perplexity, perplexity_ci

    return {m: {lang: {"value": corpus_perplexity(u["nll"]), "n": len(u["nll"]), "tokens": sum(n for _, n in u["nll"]),
                       "ci": perplexity_ci(u["nll"], n_boot=cfg.n_boot, seed=cfg.seed)}
                for lang, u in per.items()} for m, per in passes.items()}


def self_bleu_table(samples: dict, cfg: Config) -> dict:
    from xling.evaluation.probes import mean_ci, self_bleu

    out: dict = {}
    for m, per in samples.items():
        out[m] = {}
        for lang, items in per.items():
            scores = [s for s in (self_bleu(texts, lang) for texts in items.values()) if s is not None]
            out[m][lang] = {"value": float(sum(scores) / len(scores)) if scores else None, "n": len(scores),
                            "ci": mean_ci(scores, n_boot=cfg.n_boot, seed=cfg.seed)}
    return out


def drift_table(passes: dict, base: str, trained: list[str], langs: list[str], cfg: Config) -> tuple[dict, dict, dict]:
    """(per setup and language: drift summary; every problem's coordinates in one uncentered PCA of all the
    drifts; the share of Σ‖d‖² each component holds)."""
    import numpy as np

    from xling.evaluation.probes import drift, drift_summary, mean_ci, pca

    drifts = {(m, lang): drift(passes[m][lang]["hidden"], passes[base][lang]["hidden"])
              for m in trained for lang in langs}
    keys = list(drifts)
    proj, _, ratios = pca(np.concatenate([drifts[k] for k in keys]) if keys else np.zeros((0, 0)), center=False)
    coords: dict = {}
    start = 0
    for k in keys:
        coords[k] = proj[start:start + len(drifts[k])]
        start += len(drifts[k])
    table: dict = {}
    for m in trained:
        english = drifts[(m, "en")].mean(axis=0) if "en" in langs and len(drifts[(m, "en")]) else None
        table[m] = {}
        for lang in langs:
            d = drifts[(m, lang)]
            summary = drift_summary(d, passes[base][lang]["hidden"], coords[(m, lang)],
                                    english if lang != "en" else None)
            summary["norm_ci"] = mean_ci(list(np.linalg.norm(d, axis=1)), n_boot=cfg.n_boot, seed=cfg.seed)
            table[m][lang] = summary
    return table, coords, {"explained": ratios}


# -- figures and report ---------------------------------------------------------------------------------

def plot_bars(table: dict, langs: list[str], ylabel: str, path: Path, title: str, base: str | None = None) -> Path:
    """Grouped bars: languages on x, one bar per model, 95% CI error bars."""
    import numpy as np

    from xling.report.plots import _pyplot, save_figure
    from xling.report.results import BASE_COLOR, TRAINED_COLORS, _err

    plt = _pyplot()
    models = list(table)
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.6 * len(langs) * (1 + 0.3 * len(models)) + 1.5)), 3.6))
    xs = np.arange(len(langs))
    width = min(0.8 / max(1, len(models)), 0.38)
    for j, m in enumerate(models):
        vals = [table[m].get(lang, {}).get("value") for lang in langs]
        cis = [table[m].get(lang, {}).get("ci") for lang in langs]
        color = BASE_COLOR if m == base else TRAINED_COLORS[(j - (base in models)) % len(TRAINED_COLORS)]
        ax.bar(xs + (j - (len(models) - 1) / 2) * width, [v or 0.0 for v in vals], width, yerr=_err(vals, cis),
               capsize=2.5, color=color, edgecolor="white", linewidth=0.5, label=m,
               error_kw=dict(elinewidth=0.9, ecolor="#333333"))
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{c}\n{LANGUAGES[c].name}" for c in langs], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return save_figure(fig, path)


def plot_drift_pca(coords: dict, trained: list[str], langs: list[str], ratios: list, path: Path) -> Path:
    """One panel per setup: every problem's drift in the shared PCA plane, colored by language; the
    language means as large markers."""
    from xling.report.plots import _pyplot, save_figure

    plt = _pyplot()
    cmap = plt.get_cmap("tab20" if len(langs) > 10 else "tab10")
    fig, axes = plt.subplots(1, len(trained), figsize=(4.2 * len(trained) + 1.2, 4.0), squeeze=False, sharex=True,
                             sharey=True)
    label = [f"PC{i + 1}" + (f" ({100 * r:.0f}%)" if r is not None else " (no drift)") for i, r in enumerate(ratios)]
    for ax, m in zip(axes[0], trained):
        for i, lang in enumerate(langs):
            p = coords[(m, lang)]
            ax.scatter(p[:, 0], p[:, 1], s=10, alpha=0.45, color=cmap(i))
            if len(p):
                ax.scatter([p[:, 0].mean()], [p[:, 1].mean()], s=90, color=cmap(i), edgecolor="black", linewidth=0.8,
                           label=lang, zorder=3)
        ax.set_title(f"{m}: h − h_base", fontsize=10, loc="left")
        ax.set_xlabel(label[0], fontsize=8)
        ax.set_ylabel(label[1], fontsize=8)
        ax.axhline(0, color="#999999", linewidth=0.5)
        ax.axvline(0, color="#999999", linewidth=0.5)
    axes[0][-1].legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle("Drift of final-layer hidden states (origin: no change), one PCA over every setup and language",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _md(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def _rows(table: dict, langs: list[str], key: str = "value", ci: str = "ci", digits: int = 2) -> list[list]:
    return [[m, *[fmt_ci(per.get(lang, {}).get(key), per.get(lang, {}).get(ci), digits) for lang in langs]]
            for m, per in table.items()]


def write_report(run_dir: Path, metrics: dict, figures: dict, langs: list[str]) -> Path:
    from xling.common.io import atomic_write_text

    ex = metrics["pca"]["explained"]
    parts = [f"# Probes: {', '.join(metrics['models'])} on {metrics['benchmark']}", "",
             f"{metrics['problems']} problems per language; {metrics['samples']} sampled answers each; hidden states "
             f"pooled by {metrics['pool']}. Brackets: bootstrap 95% intervals over problems.", "",
             "## Perplexity of the problems", "", _md(["model", *langs], _rows(metrics["perplexity"], langs)), "",
             "## Self-BLEU of sampled answers (0–100)", "",
             _md(["model", *langs], _rows(metrics["self_bleu"], langs)),
             "", "## Drift of final-layer hidden states (h − h_base)", "",
             "Mean ‖h − h_base‖ per problem:", "", _md(["setup", *langs], _rows(metrics["drift"], langs, "norm",
                                                                                  "norm_ci", 3)), "",
             "Relative to ‖h_base‖, and the cosine of each language's mean drift with English's:", "",
             _md(["setup", *langs], [[m, *[f"{fmt(per[lang]['relative'])} / {fmt(per[lang]['cos_with_en'])}"
                                           for lang in langs]] for m, per in metrics["drift"].items()]), "",
             f"PCA (uncentered: the origin is no change) over every setup and language: PC1 holds {fmt(ex[0])}, "
             f"PC2 {fmt(ex[1])} of the drifts' total squared norm.",
             ""]
    for name, path in figures.items():
        parts += [f"![{name}]({Path(path).relative_to(run_dir)})", ""]
    return atomic_write_text(run_dir / "report.md", "\n".join(parts))


def show(metrics: dict, langs: list[str]) -> None:
    print_table("perplexity of the problems", ["model", *langs], _rows(metrics["perplexity"], langs))
    print_table("self-BLEU of sampled answers", ["model", *langs], _rows(metrics["self_bleu"], langs))
    print_table("drift ‖h − h_base‖ (final layer)", ["setup", *langs],
                _rows(metrics["drift"], langs, "norm", "norm_ci", 3),
                note=f"PCA of the drifts (uncentered), share of Σ‖d‖² per component: {metrics['pca']['explained']}")


# -- the task ------------------------------------------------------------------------------------------

def run(cfg: Config, run_dir: Path) -> dict:
    from xling.evaluation import runner as E

    run_dir = Path(run_dir)
    specs = model_specs(cfg)
    backend, data = preflight(cfg, specs)
    langs = list(data[cfg.benchmark])
    per_lang = data[cfg.benchmark]
    gen_cfg = SimpleNamespace(gen=replace(cfg.gen, n={cfg.benchmark: cfg.samples}), prefix=cfg.prefix,
                              variant=cfg.variant, seed=cfg.seed)
    cache = Path(cfg.cache) if cfg.cache else run_dir / "completions"
    samples: dict = {}
    passes: dict = {}
    for spec in specs:
        shards, _ = E.generate_model(spec, gen_cfg, data, cache, backend)
        samples[spec.name] = {s.lang: {i: [r["text"] for r in recs] for i, recs in zip(s.ids, s.records())}
                              for s in shards}
        passes[spec.name] = forward_passes(spec, cfg, per_lang, run_dir / "probes" / unit_key(spec, cfg))
    base, trained = specs[0].name, [s.name for s in specs[1:]]
    drift, coords, pca_info = drift_table(passes, base, trained, langs, cfg)
    metrics = {"benchmark": cfg.benchmark, "langs": langs, "problems": len(per_lang[langs[0]]), "samples": cfg.samples,
               "pool": cfg.pool, "backend": backend,
               "models": {s.name: {"model": s.model, "adapter": s.adapter, "role": s.role} for s in specs},
               "perplexity": perplexity_table(passes, cfg), "self_bleu": self_bleu_table(samples, cfg),
               "drift": drift, "pca": pca_info}
    figures: dict = {}
    if cfg.plots:
        fig_dir = run_dir / "figures"
        figures["perplexity"] = plot_bars(metrics["perplexity"], langs, "perplexity", fig_dir / "perplexity.png",
                                          "Perplexity of the problems (95% CI)", base)
        figures["self_bleu"] = plot_bars(metrics["self_bleu"], langs, "self-BLEU", fig_dir / "self_bleu.png",
                                         f"Self-BLEU of {cfg.samples} sampled answers per problem (95% CI)", base)
        norm = {m: {lang: {"value": c["norm"], "ci": c["norm_ci"]} for lang, c in per.items()}
                for m, per in drift.items()}
        figures["drift_norm"] = plot_bars(norm, langs, "mean ‖h − h_base‖", fig_dir / "drift_norm.png",
                                          "Drift of final-layer hidden states (95% CI)")
        figures["drift_pca"] = plot_drift_pca(coords, trained, langs, pca_info["explained"], fig_dir / "drift_pca.png")
    show(metrics, langs)
    report = write_report(run_dir, metrics, figures, langs)
    console.print(f"report: {report}", markup=False)
    metrics["files"] = {**{k: str(v) for k, v in figures.items()}, "report": str(report)}
    return metrics
