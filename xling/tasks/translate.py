"""Task `translate`: translate English problems into other languages with a local model, for parallel training.

It selects the problems exactly as the training-set builder will (same source, n, seed, level
weights; `sets=2` for an unparallel en+X run), translates them with vLLM on a GPU or transformers
on CPU, rejects translations whose numbers differ from the source's, and keeps the accepted ones
in a store folder shared by every run with the same model and data (default
`$XLING_CACHE/translations/<model>/<source>-<split>`), so a re-run only translates what is missing.
Give that folder to a training set as `translations=DIR`, or to a benchmark as `path=DIR` (it holds
the English originals too: e.g. a multilingual MATH500 from `source=math500 split=test n=null`). `model=tiny` uses a tiny random model (a CPU demo of the
mechanics: its output is garbage and is rejected).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xling.common.config import Invalid, Recipe
from xling.common.console import console, print_table
from xling.data import SOURCES, cache_root, load
from xling.common.errors import XlingError
from xling.common.io import atomic_write_jsonl
from xling.data.languages import LANGUAGES, PARALLEL_ORDER, check_codes, unknown_language_message
from xling.runs.lock import FolderLock


@dataclass(kw_only=True)
class Config(Recipe):
    source: str = "math"  # English problems to translate (a data source)
    path: str | None = None  # a local copy of it (default: the hub, cached)
    hub: str | None = None  # another hub id for the source
    split: str = "train"  # the source's split the problems come from
    langs: list[str] = field(default_factory=lambda: list(PARALLEL_ORDER))  # target languages
    n: int | None = 1000  # problems, selected as the training set selects them; null: all of them
    sets: int = 1  # disjoint matched sets to translate (2 for an unparallel en+X training set)
    level_weights: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0, 5.0])  # selection weights of levels 1, 2, ...
    model: str = "Qwen/Qwen2.5-7B-Instruct"  # the translating model: a local path, hub id or GGUF file; 'tiny' or 'toy' (xling's own models)
    backend: Literal["auto", "hf", "vllm", "transformers"] = "auto"  # generation backend (auto: vLLM with CUDA, else hf, i.e. transformers)
    template_from: str | None = None  # chat template to borrow when the model has none
    max_new_tokens: int = 1024  # new tokens per translation at most
    batch_size: int = 64  # problems per model call (and per flush to the store)
    store: str | None = None  # the translations' store folder (default: $XLING_CACHE/translations/<model>/<source>-<split>)
    retry_rejected: bool = False  # translate again the problems stored as rejected
    max_rounds: int = 3  # rounds of replacing rejected problems
    gpu_memory_utilization: float = 0.85  # vLLM: share of the GPU's memory for weights and KV cache
    tensor_parallel_size: int = 1  # vLLM: GPUs the model is split across

    def check(self) -> None:
        if self.source not in SOURCES:
            raise Invalid("source", f"unknown data source '{self.source}'; sources: {', '.join(SOURCES)}")
        if not self.langs:
            raise Invalid("langs", "give the languages to translate into, e.g. langs=ru,zh")
        for code in self.langs:
            if code not in LANGUAGES and code != "all":
                raise Invalid("langs", unknown_language_message(code))
        if self.n is not None and self.n < 1:
            raise Invalid("n", "give a positive number of problems, or null for all")
        if self.sets < 1:
            raise Invalid("sets", "must be at least 1")
        for key in ("max_new_tokens", "batch_size", "max_rounds", "tensor_parallel_size"):
            if getattr(self, key) < 1:
                raise Invalid(key, "must be at least 1")
        from xling.common.checks import tokens_problem

        if (problem := tokens_problem(self.max_new_tokens)) is not None:
            raise Invalid("max_new_tokens", problem)
        if not 0 < self.gpu_memory_utilization <= 1:
            raise Invalid("gpu_memory_utilization", "must be in (0, 1], e.g. 0.85")


LEDGER = "translated.jsonl"  # in the run folder: each translation this run made (its counts survive kills)


def store_dir(cfg: Config) -> Path:
    if cfg.store:
        return Path(cfg.store).expanduser()
    slug = cfg.model.strip("/").replace("/", "__") if cfg.model != "tiny" else "tiny"
    return cache_root() / "translations" / slug / f"{cfg.source}-{cfg.split}"


def make_translator(cfg: Config, run_dir: Path):
    from xling.generate import resolve_backend
    from xling.evaluation.models import ModelSpec, check_paths, materialize

    check_paths(ModelSpec("translation", cfg.model, template_from=cfg.template_from, role="translation"))
    backend = resolve_backend("hf" if cfg.backend == "transformers" else cfg.backend, "backend")
    model = materialize(cfg.model)  # tiny / toy built once, a GGUF file converted once
    from xling.derived import translate as T

    console.print(f"translating with {cfg.model} ({backend})", markup=False)
    if backend == "vllm":
        return T.vllm_translator(model, max_new_tokens=cfg.max_new_tokens, template_from=cfg.template_from,
                                 gpu_memory_utilization=cfg.gpu_memory_utilization,
                                 tensor_parallel_size=cfg.tensor_parallel_size)
    return T.hf_translator(model, max_new_tokens=cfg.max_new_tokens, template_from=cfg.template_from,
                           batch_size=min(cfg.batch_size, 8))


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.derived import translate as T

    langs = [c for c in check_codes(cfg.langs) if c != "en"]
    if not langs:
        raise XlingError("langs holds only English; give the languages to translate into, e.g. langs=ru,zh")
    pool = load(cfg.source, path=cfg.path, langs=["en"], split=cfg.split, hub=cfg.hub)
    folder = store_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    # one translating run per store (a store shared with this run's own folder is already locked)
    same = os.path.realpath(folder) == os.path.realpath(run_dir)
    ledger, previous = run_dir / LEDGER, run_dir / "metrics.previous.json"
    if ledger.is_file() and previous.is_file() and ledger.stat().st_mtime <= previous.stat().st_mtime:
        ledger.unlink()  # a forced re-run of a finished run: that run's translations are not this one's
    with contextlib.nullcontext() if same else FolderLock(folder, "translation store", "give store=DIR"):
        store = T.Store(folder)
        translator = make_translator(cfg, run_dir)
        report = T.translate_selection(
            pool, langs, translator, store, n=cfg.n, sets=cfg.sets, seed=cfg.seed, level_weights=cfg.level_weights,
            batch_size=cfg.batch_size, retry_rejected=cfg.retry_rejected, max_rounds=cfg.max_rounds,
            model=cfg.model, ledger=ledger)
    report.pop("selected_ids")
    considered = set(report.pop("considered_ids"))  # every problem a round selected
    rejected = [rec for (pid, lang), rec in sorted(store.rejected.items())
                if pid in considered and lang in langs and rec.get("model") in (None, cfg.model)]
    atomic_write_jsonl(run_dir / "rejected.jsonl", rejected)
    rows = [[lang, c.get("accepted", 0), c.get("rejected", 0), c.get("available", 0), report["selected"]]
            for lang, c in report["by_lang"].items()]
    print_table(f"translations of {report['selected']} {cfg.source} problems -> {store.folder}",
                ["lang", "accepted now", "rejected now", "available", "selected"], rows,
                note=f"rejections: {report['reasons'] or 'none'}; details in {run_dir / 'rejected.jsonl'}")
    sol = report["solutions"]
    if sol["translated"]:
        console.print(f"worked solutions: {sol['accepted']} of {sol['translated']} translated ones accepted"
                      + (f" (rejected: {sol['reasons']}; those problems have no solution for SFT)" if sol["rejected"]
                         else ""), markup=False)
    console.print(f"use them with: translations={store.folder} (training) or path={store.folder} (evaluation)",
                  markup=False)
    return {"source": cfg.source, "split": cfg.split, "model": cfg.model, "store": str(store.folder),
            "langs": langs, **report, "rejected_file": str(run_dir / "rejected.jsonl")}
