"""Task `pivot`: English reference answers for a training set, written by a pivot model (PB-RLSVR).

    python run.py pivot data.source=gsm8k-parallel data.langs=de,zh data.n=1000 pivot.model=Qwen/Qwen2.5-7B-Instruct

It selects the training problems exactly as training will (the `data` section is a training
recipe's), has the pivot model answer each one in English (`xling.derived.pivot`: vLLM on a GPU,
transformers elsewhere; cached per problem, resumable), and prints where the references are. Give
that folder to a training recipe as `data.references=DIR`: every training row then carries its
problem's `reference`, which the `pivot` and `pivot_translate` rewards read. The `pivot-reward`
recipe runs this stage itself before training. Run folder: `references.jsonl` (this training set's
records, accepted and rejected) and metrics.json (counts, reasons, the pivot's accuracy where the
gold answer is known).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from xling.common.config import Invalid, Recipe
from xling.common.console import console
from xling.common.errors import XlingError
from xling.data.trainset import TrainData
from xling.generate.sampling import SamplingSection

DTYPES = ("auto", "bfloat16", "float16", "float32")
LEDGER = "references_written.jsonl"  # in the run folder: each reference this run wrote (its counts survive kills)


@dataclass(kw_only=True)
class PivotConfig(SamplingSection):
    """The pivot model and how it writes references (a recipe section: `pivot.model=...`); temperature, top_p
    and max_tokens are `xling.generate.sampling.SamplingSection`'s."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 2048
    model: str = "Qwen/Qwen2.5-7B-Instruct"  # the pivot model: hub id, local folder, or 'tiny' (a tiny random model: CPU demo)
    template_from: str | None = None  # chat template to borrow when the model has none
    backend: Literal["auto", "hf", "vllm"] = "auto"  # generation backend (auto: vLLM with CUDA, else transformers)
    dtype: str = "auto"  # weights' dtype: auto, bfloat16, float16 or float32 (auto: bfloat16 on CUDA, float32 on CPU)
    keep_truncated: bool = False  # keep references cut off at max_tokens (else rejected)
    retry_rejected: bool = False  # write again the references stored as rejected (empty or cut off)
    chunk: int = 64  # problems per generation call (the unit of resume)
    batch_size: int = 8  # transformers: problems per generate() call
    gpu_memory_utilization: float = 0.85  # vLLM: share of the GPU's memory for weights and KV cache
    store: str | None = None  # the references' store folder (default: $XLING_CACHE/references/<model>-<settings>/<source>-<split>)

    def check(self) -> None:
        if not str(self.model).strip():
            raise Invalid("model", "give the pivot model: a hub id, a local folder, or 'tiny'")
        if self.dtype not in DTYPES:
            raise Invalid("dtype", f"choose one of: {', '.join(DTYPES)}")
        super().check()
        for key in ("chunk", "batch_size"):
            if getattr(self, key) < 1:
                raise Invalid(key, "must be at least 1")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise Invalid("gpu_memory_utilization", "must be in (0, 1]")


@dataclass(kw_only=True)
class Config(Recipe):
    data: TrainData = field(default_factory=TrainData)  # the training set (as the training recipe has it)
    pivot: PivotConfig = field(default_factory=PivotConfig)  # the pivot model and how it writes references

    def check(self) -> None:
        if self.data.references:
            raise Invalid("data.references", "is what this stage writes; leave it out here")


def settings(p: PivotConfig, seed: int):
    from xling.derived.pivot import Settings

    return Settings(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, seed=seed, chunk=p.chunk,
                    keep_truncated=p.keep_truncated)


def model_path(p: PivotConfig) -> str:
    """The pivot model as a local path or hub id ('tiny' built under the xling cache); a missing local
    folder is refused before anything is loaded."""
    from xling.evaluation.models import ModelSpec, check_paths, materialize

    check_paths(ModelSpec("pivot", p.model, role="pivot"))
    return materialize(p.model)


def store_dir(p: PivotConfig, data: TrainData, seed: int) -> Path:
    if p.store:
        return Path(p.store).expanduser()
    from xling.data import cache_root
    from xling.common.store import IN_NAMES, fingerprint
    from xling.generate.completions import local_fingerprint, slug
    from xling.data.prompts import SOLVE

    s = settings(p, seed)
    key = {"model": p.model, "model_files": local_fingerprint(model_path(p)), "template_from": p.template_from,
           "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": s.seed,
           "instruction": SOLVE}
    name = "tiny" if p.model == "tiny" else p.model.strip("/").replace("/", "__")
    return cache_root() / "references" / f"{slug(name)}-{fingerprint(key, IN_NAMES)}" / f"{data.source}-{data.split}"


def backend_of(p: PivotConfig) -> str:
    from xling.generate import resolve_backend

    return resolve_backend(p.backend, "pivot.backend")


def make_generator(p: PivotConfig, backend: str, seed: int):
    from xling.generate import load_generator

    options: dict = {"template_from": p.template_from, "dtype": p.dtype, "seed": seed}
    if backend == "hf":
        options["batch_size"] = p.batch_size
    else:
        options["gpu_memory_utilization"] = p.gpu_memory_utilization
    path = model_path(p)
    return lambda: load_generator(backend, path, **options)


def stage(data: TrainData, p: PivotConfig, seed: int, run_dir: Path | None = None) -> tuple[Path, dict]:
    """Write the missing references of the training set `data`; returns (store folder, report)."""
    from xling.derived import pivot as P
    from xling.common.io import atomic_write_jsonl

    backend = backend_of(p)
    problems, asked = P.pivot_problems(data)
    store = P.ReferenceStore(store_dir(p, data, seed))
    ledger = Path(run_dir) / LEDGER if run_dir is not None else None
    previous = Path(run_dir) / "metrics.previous.json" if run_dir is not None else None
    if ledger is not None and ledger.is_file() and previous.is_file() \
            and ledger.stat().st_mtime <= previous.stat().st_mtime:
        ledger.unlink()  # a forced re-run of a finished run: what that run wrote is not this one's
    report = P.write_references(problems, make_generator(p, backend, seed), store, settings(p, seed),
                                model=p.model, retry_rejected=p.retry_rejected, ledger=ledger)
    report.update({"store": str(store.folder), "asked_in": asked, "backend": backend})
    if run_dir is not None:
        atomic_write_jsonl(Path(run_dir) / P.FILE, [store.records[ex.id] for ex in problems if ex.id in store.records])
    show(report)
    if problems and not report["available"]:
        raise XlingError(f"pivot.model={p.model} wrote no usable reference answer for any of the {len(problems)} "
                         f"problems ({report['missing_reasons']}; its answers are in {store.file}); raise "
                         "pivot.max_tokens, set pivot.keep_truncated=true, or use another pivot.model")
    return store.folder, report


def show(report: dict) -> None:
    acc = report.get("pivot_accuracy")
    console.print(f"pivot: {report['available']} of {report['problems']} problems have a reference answer "
                  f"({report['written']} written now, {report['cached']} cached)"
                  + (f"; pivot accuracy {acc:.3f} over {report['graded']} graded" if acc is not None else ""),
                  markup=False)
    if report["missing"]:
        console.print(f"pivot: {report['missing']} without one ({report['missing_reasons']}); training leaves them "
                      "out (pivot.retry_rejected=true writes them again, pivot.max_tokens raises the length limit)",
                      style="yellow", markup=False)
    if report.get("asked_in", {}).keys() - {"en"}:
        console.print(f"pivot: asked in {report['asked_in']} (problems with no English version are asked in the "
                      "language they have; the pivot answers in English)", markup=False)


def run(cfg: Config, run_dir: Path) -> dict:
    folder, report = stage(cfg.data, cfg.pivot, cfg.seed, run_dir)
    console.print(f"use them with: data.references={folder}", markup=False, soft_wrap=True)
    return {"pivot_model": cfg.pivot.model, "data": asdict(cfg.data), **report,
            "references": str(Path(run_dir) / "references.jsonl")}
