"""Evaluating models: generate completions into the resumable cache, score them with the one grader, gather per-item records."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from xling.common.console import console
from xling.common.errors import XlingError
from xling.evaluation.benchmarks import benchmark_langs, load_benchmarks
from xling.evaluation.models import (
    ModelSpec,
    check_model,
    check_paths,
    default_name,
    materialize,
    spec_gen,
)
from xling.evaluation.settings import PAPER_N

_RENDERERS: dict = {}


@contextmanager
def progress_bar(description: str, total: int) -> Iterator:
    """A rich progress bar with ETA; yields advance(k)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                  transient=False) as prog:
        task = prog.add_task(description, total=total)
        yield lambda k=1: prog.advance(task, k)


def generation_settings(spec: ModelSpec, cfg, backend: str) -> dict:
    """Everything that changes a model's completions (names the cache folder).

    The model and the adapter enter by path (or hub id) and, when local, by the names, sizes and
    modification times of their weight and config files (`local_fingerprint`), so that retraining
    into the same folder is noticed; the backend, dtype and device enter too, so that hf and vLLM
    (or CPU and GPU) completions never share a shard.
    """
    from xling.data.prompts import SOLVE
    from xling.generate import core
    from xling.generate.completions import local_fingerprint

    g = spec_gen(cfg, spec)
    on_cpu = core.vllm_on_cpu() if backend == "vllm" else not core.cuda_available()
    device = "cpu" if on_cpu else "cuda"
    return {"model": spec.model, "model_files": local_fingerprint(spec.model),
            "adapter": str(Path(spec.adapter).resolve()) if spec.adapter else None,
            "adapter_files": local_fingerprint(spec.adapter), "backend": backend, "dtype": g.dtype, "device": device,
            "template_from": spec.template_from, "prefix": cfg.prefix, "variant": cfg.variant,
            "temperature": g.temperature, "top_p": g.top_p, "max_tokens": g.max_tokens, "seed": cfg.seed,
            "instruction": SOLVE}


def model_key(spec: ModelSpec, cfg, backend: str) -> str:
    from xling.common.store import IN_NAMES, fingerprint
    from xling.generate.completions import slug

    settings = generation_settings(spec, cfg, backend)
    return f"{slug(default_name(spec.model, spec.adapter))}-{fingerprint(settings, IN_NAMES)}"


def prompt_renderer(model: str, template_from: str | None):
    """conversation -> the prompt text the generators render for it (tokenizer only, no weights)."""
    from xling.data.prompts import chat_template_for, render
    from xling.generate.hf import load_tokenizer

    key = (model, template_from)
    if key not in _RENDERERS:
        tokenizer = load_tokenizer(model)
        template = chat_template_for(tokenizer, template_from)
        _RENDERERS.clear()  # one model at a time: do not keep every tokenizer alive
        _RENDERERS[key] = lambda conv: render(list(conv), tokenizer, template)
    return _RENDERERS[key]


def build_shards(spec: ModelSpec, cfg, data: dict[str, dict], cache: Path, backend: str) -> list:
    """The model's shards; each knows the prompt of every item, so that a cached completion of
    another prompt (a changed template or tokenizer) is generated again rather than reused."""
    from xling.data.prompts import build_messages
    from xling.generate.completions import Shard

    key = model_key(spec, cfg, backend)
    render = prompt_renderer(spec.model, spec.template_from)
    shards = []
    for b, per_lang in data.items():
        for lang, examples in per_lang.items():
            convs = {ex.id: build_messages(ex, prefix=cfg.prefix, variant=cfg.variant) for ex in examples}
            shards.append(Shard(spec.name, b, lang, cache / key / b / f"{lang}.jsonl", [ex.id for ex in examples],
                                convs, cfg.gen.samples(b), cfg.seed, prompts={i: render(c) for i, c in convs.items()},
                                backend=backend))
    return shards


def open_generator(spec: ModelSpec, cfg, backend: str):
    from xling.generate import load_generator

    g = cfg.gen
    options: dict = dict(template_from=spec.template_from, dtype=g.dtype, seed=cfg.seed)
    if backend == "hf":
        options.update(batch_size=g.batch_size)
    else:
        options.update(max_lora_rank=g.max_lora_rank, gpu_memory_utilization=g.gpu_memory_utilization,
                       max_model_len=g.max_model_len, enforce_eager=g.enforce_eager, engine_kwargs=dict(g.engine))
    console.print(f"loading {spec.name} ({backend}): {spec.model}" + (f" + adapter {spec.adapter}" if spec.adapter else ""),
                  markup=False, soft_wrap=True)
    return load_generator(backend, spec.model, adapter=spec.adapter, **options)


def generate_model(spec: ModelSpec, cfg, data: dict[str, dict], cache: Path, backend: str) -> tuple[list, dict]:
    """Fill the completion cache of one model (one engine for every benchmark and language)."""
    from xling.generate.completions import GenerationSettings, generate_shards

    g = spec_gen(cfg, spec)
    shards = build_shards(spec, cfg, data, cache, backend)
    chunk = g.chunk or (g.batch_size if backend == "hf" else 256)
    for s in shards:
        s.load()
    pending = sum(len(s.pending) for s in shards)
    generator = None

    def get_generator():
        nonlocal generator
        generator = open_generator(spec, cfg, backend)
        return generator

    def settings_for(shard) -> GenerationSettings:
        return GenerationSettings(n=shard.n, temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_tokens,
                                  chunk=chunk)

    start = time.monotonic()
    try:
        if pending:
            with progress_bar(f"generating {spec.name}", pending) as advance:
                stats = generate_shards(shards, get_generator, settings_for, lambda k, _t: advance(k), chunk)
        else:
            stats = generate_shards(shards, get_generator, settings_for, None, chunk)
    finally:
        if generator is not None:
            generator.close()
    stats["seconds"] = time.monotonic() - start
    done = stats["shards_cached"]
    console.print(f"{spec.name}: {stats['items_generated']} items generated"
                  + (f" ({stats['items_stale']} of them again: their cached prompt or backend differed)"
                     if stats.get("items_stale") else "")
                  + (f", {done} of {len(shards)} shards already finished (skipped)" if done else "")
                  + (f", {stats['tokens']} tokens in {stats['seconds']:.1f}s" if stats["items_generated"] else ""),
                  markup=False)
    return shards, stats


def score_model(spec: ModelSpec, shards: list, data: dict[str, dict], cfg, grader, run_dir: Path) -> list[dict]:
    """Per-item records of one model (scored shards are cached under RUN/scored/).

    A cached row is reused only for the same item, n, completions, gold answer and scoring
    settings (`xling.evaluation.score.read_scored`); the other items of the shard are scored again and the
    shard is rewritten atomically.
    """
    from xling.evaluation.score import (
        item_record,
        read_scored,
        score_samples,
        scored_key,
        write_scored,
    )
    from xling.common.store import IN_NAMES, fingerprint

    settings = cfg.score
    folder = run_dir / "scored" / f"{shards[0].path.parent.parent.name}-{fingerprint(settings.as_dict(), IN_NAMES)}"
    items: list[dict] = []
    todo = []
    for shard in shards:
        path = folder / shard.benchmark / f"{shard.lang}.jsonl"
        examples = {ex.id: ex for ex in data[shard.benchmark][shard.lang]}
        records = dict(zip(shard.ids, shard.records()))
        keys = {i: scored_key(records[i], examples[i].answer, examples[i].kind, settings) for i in shard.ids}
        cached = read_scored(path, keys, shard.n)
        missing = [i for i in shard.ids if i not in cached]
        todo.append((shard, path, examples, records, keys, cached, missing))
    total = sum(len(t[-1]) for t in todo)
    with progress_bar(f"scoring {spec.name}", total) if total else _no_progress() as advance:
        for shard, path, examples, records, keys, cached, missing in todo:
            if missing:
                graded = score_samples([records[i] for i in missing], [examples[i].answer for i in missing],
                                       [examples[i].kind for i in missing], shard.lang, grader, settings)
                for i, g in zip(missing, graded):
                    cached[i] = item_record(spec.name, shard.benchmark, shard.lang, i, examples[i].answer, g)
                rows = [cached[i] for i in shard.ids]
                write_scored(path, rows, [keys[i] for i in shard.ids])
                advance(len(missing))
            items.extend({**cached[i], "model": spec.name} for i in shard.ids)
    return items


@contextmanager
def _no_progress() -> Iterator:
    yield lambda k=1: None


def evaluate_specs(specs: list[ModelSpec], cfg, data: dict[str, dict], run_dir: Path, backend: str) -> tuple[list[dict], dict]:
    """Generate and score every model; returns all per-item records and generation stats per model."""
    from xling.grading.answers import Grader

    cache = Path(cfg.cache) if cfg.cache else run_dir / "completions"
    items: list[dict] = []
    stats: dict[str, dict] = {}
    s = cfg.score
    with Grader(timeout=s.timeout, workers=s.workers) as grader:
        for spec in specs:
            shards, stats[spec.name] = generate_model(spec, cfg, data, cache, backend)
            items.extend(score_model(spec, shards, data, cfg, grader, run_dir))
    return items, stats


def preflight(specs: list[ModelSpec], cfg) -> tuple[str, dict[str, dict]]:
    """Every check that can fail, before any generation: backend, benchmarks, data, models, adapters."""
    from xling.generate import resolve_backend

    backend = resolve_backend(cfg.gen.backend, "gen.backend")
    per_bench = benchmark_langs(list(cfg.benchmarks), list(cfg.langs), dict(cfg.data))
    unknown_n = [b for b in cfg.gen.n if b not in per_bench and b not in PAPER_N]
    if unknown_n:
        raise XlingError(f"gen.n.{unknown_n[0]} is set but {unknown_n[0]} is not among benchmarks "
                         f"({', '.join(per_bench)})")
    for b, path in cfg.data.items():  # local paths first: a missing folder must not wait behind downloads
        if not Path(path).expanduser().exists():
            what = ("make a multilingual MATH500 with: python run.py translate source=math500 split=test n=null "
                    "langs=all, and give its folder" if b == "math500"
                    else f"give a local copy of {b}, or drop data.{b} to load it from the hub")
            raise XlingError(f"data.{b}={path}: no such file or folder; {what}")
    for spec in specs:
        check_paths(spec)
    seen: set = set()
    for spec in specs:
        spec.model = materialize(spec.model)
        if spec.identity in seen:
            continue
        seen.add(spec.identity)
        check_model(spec, backend, cfg.gen.max_lora_rank)
    data = load_benchmarks(per_bench, dict(cfg.data), cfg.limit)
    return backend, data


def show_plan(specs: list[ModelSpec], data: dict[str, dict], cfg, backend: str) -> None:
    g = cfg.gen
    for spec in specs:
        extra = f" + {spec.adapter}" if spec.adapter else ""
        own = [f"{k} {v}" for k, v in spec.gen.items()]
        notes = f" [{'; '.join([*spec.notes, *own])}]" if spec.notes or own else ""
        console.print(f"  {spec.role:8s} {spec.name}: {spec.model}{extra}{notes}", markup=False, soft_wrap=True)
    for b, per_lang in data.items():
        n_items = {len(v) for v in per_lang.values()}
        console.print(f"  {b}: {', '.join(per_lang)} ({'/'.join(map(str, sorted(n_items)))} problems per language, "
                      f"{g.samples(b)} sample{'s' if g.samples(b) > 1 else ''} each)", markup=False)
    console.print(f"  backend {backend}; temperature {g.temperature}, top_p {g.top_p}, max_tokens {g.max_tokens}, "
                  f"seed {cfg.seed}; prompt {cfg.variant}{' + prefix' if cfg.prefix else ''}", markup=False)


def check_comparisons(specs: list[ModelSpec], data: dict[str, dict]) -> None:
    """With a base model, every training language must be evaluated and one language left unseen."""
    if not any(s.role == "base" for s in specs):
        return
    for spec in specs:
        if spec.role != "trained":
            continue
        for b, per_lang in data.items():
            absent = [c for c in spec.train_langs if c not in per_lang]
            if absent:
                raise XlingError(f"training language(s) {', '.join(absent)} of '{spec.name}' are not evaluated on {b} "
                                 f"(langs: {', '.join(per_lang)}); the training-set gain needs them: add them to "
                                 "langs= or correct train_langs=")
            if all(c in spec.train_langs for c in per_lang):
                raise XlingError(f"{b}: every evaluated language is a training language of '{spec.name}'; MTI needs "
                                 "unseen languages: add some to langs=")
