"""Task `evaluate`: generate, score and compare models on multilingual benchmarks, with a report.

    python run.py evaluate model=ID [adapter=DIR] [base=ID] benchmarks=mgsm,aime24 langs=all \
        [train_langs=en] [data.mgsm=DIR] [gen.backend=hf] [limit=20]

Everything is checked before anything is generated: benchmarks and their languages, data files,
models and chat templates, adapters (their LoRA rank against what vLLM can serve), training
languages. Then, per model (one engine for all benchmarks and languages): completions are
generated into a resumable cache (`completions/`), scored with the one grader (`scored/`), and
summarised. Run folder:

    accuracy.csv      the accuracy table (model,benchmark,lang,accuracy,n): `transfer` reads it
    off_target.csv    model,benchmark,lang,off_target,judged,n,truncated
    items.jsonl       per-item records (model, benchmark, lang, id, score, correct, extracted,
                      detected_lang, on_target, truncated, ...): `transfer items=` reads it
    figures/*.png     accuracy per language (base vs trained, 95% CIs), TI heatmap, scaling
    report.md         tables and figures
    metrics.json      accuracy and off-target per cell with 95% intervals; with a base model,
                      gains, TI, MTI (avg / ID / OOD) and Gen with 95% intervals
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xling.common.config import Invalid, Recipe
from xling.common.console import console
from xling.common.errors import XlingError
from xling.data.languages import LANGUAGES, unknown_language_message
from xling.evaluation.models import ModelSpec, default_name
from xling.analysis.settings import ScalingSection
from xling.evaluation.runner import (
    check_comparisons,
    evaluate_specs,
    preflight,
    show_plan,
)
from xling.evaluation.settings import BenchmarkSection, Extra


@dataclass(kw_only=True)
class Config(BenchmarkSection, ScalingSection, Recipe):
    """Task `evaluate`: the keys of every evaluation (`xling.evaluation.settings.BenchmarkSection`: benchmarks, langs,
    gen, score, the study's settings and the scaling fits'), and the models compared."""

    model: str | None = None  # trained model: folder, hub id, GGUF file (or its folder), tiny or toy (null: only models/base)
    adapter: str | None = None  # LoRA adapter folder on `model`, served without merging
    name: str | None = None  # its label in tables (default: from the adapter or model path)
    base: str | None = None  # initial model (same forms): evaluated too and compared (gains, TI, MTI, Gen)
    base_name: str | None = None  # the base model's label in tables (default: from its path)
    train_langs: list[str] = field(default_factory=lambda: ["en"])  # languages the trained model saw
    paradigm: str | None = None  # how it was trained (RL, SFT, ...): models are grouped by it
    models: list[Extra] = field(default_factory=list)  # more trained models compared with the same base
    scaling: dict[str, int] = field(default_factory=dict)  # model name -> training languages X (default: len(train_langs))

    def check(self) -> None:
        super().check()
        for key in ("train_langs",):
            for code in getattr(self, key):
                if code not in LANGUAGES:
                    raise Invalid(key, unknown_language_message(code))
        if not self.train_langs:
            raise Invalid("train_langs", "give at least one training language, e.g. train_langs=en")
        if not self.model and not self.models and not self.base:
            raise Invalid("model", "give a model to evaluate (model=ID), more models (models=[...]) or a base")
        if (self.adapter or self.name) and not self.model:
            raise Invalid("model", "adapter= and name= belong to model=, which is not given")
        if self.base_name and not self.base:
            raise Invalid("base_name", "names the base model, but no base= is given; add base=MODEL or drop base_name")
        names = [e.name for e in self.models]
        if len(set(names)) != len(names):
            raise Invalid("models", "every entry needs its own name")
        for i, e in enumerate(self.models):
            for code in e.train_langs:
                if code not in LANGUAGES:
                    raise Invalid(f"models[{i}].train_langs", unknown_language_message(code))
            if not e.adapter and not e.model:
                raise Invalid(f"models[{i}]", "give the model= or the adapter= of this entry")
        for name, x in self.scaling.items():
            if x < 1:
                raise Invalid(f"scaling.{name}", "the number of training languages is at least 1")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


def model_specs(cfg: Config) -> list[ModelSpec]:
    specs = []
    if cfg.model:
        specs.append(ModelSpec(cfg.name or default_name(cfg.model, cfg.adapter), cfg.model, cfg.adapter,
                               cfg.template_from, "trained", list(cfg.train_langs), paradigm=cfg.paradigm))
    for i, e in enumerate(cfg.models):
        if not (e.model or cfg.model):
            raise XlingError(f"models[{i}] ({e.name}) has an adapter but no model: give models[{i}].model or model=")
        specs.append(ModelSpec(e.name, e.model or cfg.model, e.adapter, cfg.template_from, "trained",
                               list(e.train_langs), paradigm=e.paradigm, x=e.x))
    if cfg.base:
        name = cfg.base_name or default_name(cfg.base)
        specs.append(ModelSpec(name, cfg.base, None, cfg.template_from, "base", []))
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise XlingError(f"two models are both named '{dupes[0]}'; give name=, base_name= or distinct models[].name")
    unknown = [n for n in cfg.scaling if n not in names]
    if unknown:
        raise XlingError(f"scaling names model '{unknown[0]}', which is not evaluated here; models: {', '.join(names)}")
    return specs


def study_members(specs: list[ModelSpec], scaling: dict[str, int] | None = None) -> list:
    """The trained models compared with the base (none without a base), as `xling.analysis.members` records."""
    from xling.analysis.members import Member

    base = next((s for s in specs if s.role == "base"), None)
    if base is None:
        return []
    scaling = scaling or {}
    return [Member.of(s.name, base.name, s.train_langs, scaling.get(s.name, s.x if s.x is not None else "auto"),
                      s.paradigm) for s in specs if s.role == "trained"]


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.analysis import members as AM
    from xling.analysis import study as AS
    from xling.report import results as R
    from xling.report import study as A

    specs = model_specs(cfg)
    backend, data = preflight(specs, cfg)
    check_comparisons(specs, data)
    show_plan(specs, data, cfg, backend)
    items, stats = evaluate_specs(specs, cfg, data, run_dir, backend)
    langs = {b: list(per_lang) for b, per_lang in data.items()}
    study = AS.analyze(items, study_members(specs, cfg.scaling), langs, models=[s.name for s in specs], seed=cfg.seed,
                       **cfg.options())
    files = R.write_outputs(run_dir, items, study.summary)
    if study.members:
        files["members"] = AM.write_members(run_dir / "models.csv", study.members)
    A.show(study)
    figures = A.figures(run_dir, study, paper_curve=cfg.paper_curve) if cfg.plots else {}
    report = A.write_report(run_dir, study, figures, title=f"Evaluation: {', '.join(s.name for s in specs)}",
                            settings=R.settings_lines(cfg, backend))
    console.print(f"report: {report}", markup=False)
    return {
        "models": {s.name: {"model": s.model, "adapter": s.adapter, "role": s.role, "train_langs": s.train_langs,
                            "template_from": s.template_from, "paradigm": s.paradigm} for s in specs},
        **study_record(cfg, backend, langs, stats, study, {**files, **figures, "report": report}),
    }


def study_record(cfg, backend: str, langs: dict[str, list[str]], stats: dict, study, files: dict) -> dict:
    """What an evaluating task's metrics.json holds beside its models: the backend, the languages and samples
    per benchmark, the generation statistics, the study's metrics and the files written."""
    return {
        "backend": backend,
        "mti_policy": cfg.mti_policy,
        "langs": langs,
        "samples": {b: cfg.gen.samples(b) for b in langs},
        "generation": stats,
        **study.as_metrics(),
        "files": {k: str(v) for k, v in files.items()},
    }
