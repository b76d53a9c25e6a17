"""Task `observational`: the paper's observational study — released reasoning models vs their initial models.

Each entry of `pairs` names a trained model, the model it was trained from, and its paradigm (RL
or SFT). Every distinct model (model, adapter, chat template) is evaluated once, however many pairs
share it (the initial Qwen2.5-7B of several RL-zero models, say), with the same protocol as
`evaluate`. Reported: accuracy and off-target per model, MTI per pair (per benchmark, avg, ID,
OOD) and Gen, and the mean MTI of each paradigm with bootstrap 95% intervals (one paired
bootstrap over items for every model, so the group means and their difference are comparable).
Run folder as `evaluate` (accuracy.csv, off_target.csv, items.jsonl, figures/, report.md,
metrics.json) with `figures/mti.png` (MTI per model by paradigm) and a TI heatmap per benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from xling.common.config import Invalid, Recipe
from xling.common.console import console
from xling.common.errors import XlingError
from xling.data.languages import LANGUAGES, unknown_language_message
from xling.evaluation.settings import BenchmarkSection, check_samples
from xling.evaluation.models import ModelSpec, default_name
from xling.evaluation.runner import check_comparisons, evaluate_specs, preflight, show_plan
from xling.tasks.evaluate import study_record


@dataclass
class PairGen:
    """A pair's own sampling settings (null: the recipe's `gen`), used for both of its models.

    The paper evaluates 32B models with 32,768 new tokens and DAPO-Qwen-32B with its own settings
    (temperature 1.0, top-p 0.7, 20,480 tokens). An initial model shared by pairs with different
    settings is evaluated once per setting, so every comparison is like for like. The values are
    checked as the recipe's `gen` (`xling.generate.sampling.SamplingSection`) with these in place.
    """

    temperature: float | None = None  # sampling temperature, 0 (greedy) to 2 (null: gen.temperature)
    top_p: float | None = None  # nucleus sampling probability mass, in (0, 1] (null: gen.top_p)
    max_tokens: int | None = None  # new tokens per answer at most (null: gen.max_tokens)

    def overrides(self) -> dict:
        return {k: v for k, v in (("temperature", self.temperature), ("top_p", self.top_p),
                                  ("max_tokens", self.max_tokens)) if v is not None}


@dataclass
class Pair:
    """One trained model and the model it was trained from."""

    trained: str  # the trained model: id or folder, or a name from `models`
    initial: str  # the initial model: id or folder, or a name from `models`
    paradigm: str = "RL"  # how it was trained (RL, SFT, ...): models are grouped by it
    name: str | None = None  # the trained model's label in tables (default: from its path)
    adapter: str | None = None  # LoRA adapter on `trained`
    train_langs: list[str] = field(default_factory=lambda: ["en"])  # languages the trained model was trained on
    template_from: str | None = None  # chat template for both models of the pair (default: the recipe's)
    gen: PairGen = field(default_factory=PairGen)  # sampling settings for both models of the pair (null: gen.*)


@dataclass(kw_only=True)
class Config(BenchmarkSection, Recipe):
    """Task `observational`: the keys of every evaluation (`xling.evaluation.settings.BenchmarkSection`) and the pairs."""

    pairs: list[Pair] = field(default_factory=list)  # the trained models, each with its initial model and paradigm
    models: dict[str, str] = field(default_factory=dict)  # short name -> model id or folder, usable in pairs

    def check(self) -> None:
        super().check()
        if not self.pairs:
            raise Invalid("pairs", "give at least one {trained, initial, paradigm} entry")
        for i, p in enumerate(self.pairs):
            if not str(p.trained).strip() or not str(p.initial).strip():
                raise Invalid(f"pairs[{i}]", "needs both trained= and initial=")
            if not str(p.paradigm).strip():
                raise Invalid(f"pairs[{i}].paradigm", "name the training paradigm, e.g. RL or SFT")
            if p.trained == p.initial and not p.adapter:
                raise Invalid(f"pairs[{i}]", f"the trained and the initial model are the same ({p.trained})")
            if not p.train_langs:
                raise Invalid(f"pairs[{i}].train_langs", "give at least one training language")
            for code in p.train_langs:
                if code not in LANGUAGES:
                    raise Invalid(f"pairs[{i}].train_langs", unknown_language_message(code))
            own = p.gen.overrides()
            if own:
                g = replace(self.gen, **own)
                try:
                    g.check_samples(1)
                except Invalid as e:
                    raise Invalid(f"pairs[{i}].gen.{e.key}", e.message) from None
                check_samples(g, self.benchmarks, f"pairs[{i}].gen")


def _resolve(ref: str, models: dict[str, str]) -> tuple[str, str]:
    """(model id, label) of a reference that is a name in `models` or a model id/folder."""
    if ref in models:
        return models[ref], ref
    return ref, default_name(ref)


def plan_models(cfg: Config) -> tuple[list[ModelSpec], list[tuple[str, str, str, list[str]]]]:
    """The distinct models to evaluate, and per pair (trained name, initial name, paradigm, train langs)."""
    specs: dict[tuple, ModelSpec] = {}
    taken: set[str] = set()

    def spec_for(model: str, label: str, adapter: str | None, template: str | None, role: str,
                 gen: dict) -> ModelSpec:
        key = (model, adapter, template, tuple(sorted(gen.items())))
        if key in specs:
            return specs[key]
        name, k = label, 2
        while name in taken:
            name, k = f"{label}-{k}", k + 1
        taken.add(name)
        specs[key] = ModelSpec(name, model, adapter, template, role, [], gen=dict(gen))
        return specs[key]

    pairs = []
    for i, p in enumerate(cfg.pairs):
        template = p.template_from if p.template_from is not None else cfg.template_from
        t_model, t_label = _resolve(p.trained, cfg.models)
        i_model, i_label = _resolve(p.initial, cfg.models)
        if p.adapter and not p.name:
            t_label = default_name(t_model, p.adapter)
        own = p.gen.overrides()
        initial = spec_for(i_model, i_label, None, template, "initial", own)
        trained = spec_for(t_model, p.name or t_label, p.adapter, template, "trained", own)
        if trained is initial:
            raise XlingError(f"pairs[{i}]: the trained and the initial model are the same evaluation ({trained.name})")
        pairs.append((trained.name, initial.name, str(p.paradigm), list(p.train_langs)))
    seen = [t for t, _, _, _ in pairs]
    dupes = sorted({t for t in seen if seen.count(t) > 1})
    if dupes:
        raise XlingError(f"model '{dupes[0]}' is the trained model of two pairs (the same model, adapter and "
                         "template are one evaluation); a trained model is compared with one initial model: "
                         "keep one of those pairs")
    return list(specs.values()), pairs


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.analysis import members as AM
    from xling.analysis import study as AS
    from xling.report import study as A
    from xling.report import results as R

    specs, pairs = plan_models(cfg)
    by_name = {s.name: s for s in specs}
    for t, _, _, langs in pairs:
        by_name[t].train_langs = langs
    backend, data = preflight(specs, cfg)
    check = [ModelSpec(t, by_name[t].model, role="trained", train_langs=langs) for t, _, _, langs in pairs]
    check_comparisons(check + [ModelSpec("base", "", role="base")], data)
    show_plan(specs, data, cfg, backend)
    items, stats = evaluate_specs(specs, cfg, data, run_dir, backend)
    langs = {b: list(per_lang) for b, per_lang in data.items()}
    members = [AM.Member(t, i, list(tl), None, paradigm) for t, i, paradigm, tl in pairs]
    study = AS.analyze(items, members, langs, models=[s.name for s in specs], seed=cfg.seed, **cfg.options())
    summary = study.summary
    files = R.write_outputs(run_dir, items, summary)
    files["members"] = AM.write_members(run_dir / "models.csv", members)
    A.show(study)
    figures = A.figures(run_dir, study, observational=True) if cfg.plots else {}
    report = A.write_report(run_dir, study, figures, title="Observational study: MTI of trained vs initial models",
                            settings=R.settings_lines(cfg, backend))
    console.print(f"report: {report}", markup=False)
    return {
        "models": {s.name: {"model": s.model, "adapter": s.adapter, "template_from": s.template_from, "gen": s.gen}
                   for s in specs},
        "pairs": [{"trained": t, "initial": i, "paradigm": p, "train_langs": tl} for t, i, p, tl in pairs],
        **study_record(cfg, backend, langs, stats, study, {**files, **figures, "report": report}),
    }
