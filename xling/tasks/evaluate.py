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

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from .. import hub
from .. import metrics as M
from ..config import Invalid, Recipe
from ..console import console
from ..errors import XlingError
from ..languages import CODES, LANGUAGES, check_codes, unknown_language_message
from ..prompts import Variant

PAPER_N = {"aime24": 16, "aime25": 16}  # samples per question (SPEC §3); every other benchmark: 1
DTYPES = ("auto", "bfloat16", "float16", "float32")  # gen.dtype: what both generation backends load


@dataclass
class GenConfig:
    """Generation settings (SPEC §3 defaults)."""

    backend: Literal["auto", "hf", "vllm"] = "auto"  # auto: vllm on CUDA, else hf
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 8192
    n: dict[str, int] = field(default_factory=lambda: dict(PAPER_N))  # samples per question; others 1
    chunk: int = 0  # conversations per generation call (what a crash can lose); 0: hf batch_size, vllm 256
    batch_size: int = 8  # hf: conversations per generate() call
    dtype: str = "auto"  # auto, bfloat16, float16 or float32 (auto: bfloat16 on CUDA, float32 on CPU)
    max_lora_rank: int | None = None  # vllm: null = the adapter's rank rounded up to an allowed value
    gpu_memory_utilization: float = 0.9  # vllm on a GPU: share of its memory for weights and KV cache
    max_model_len: int | None = None  # vllm: null = the model's
    enforce_eager: bool | None = None  # vllm: no CUDA graphs / torch.compile (null: vLLM's default, eager on CPU)
    engine: dict[str, Any] = field(default_factory=dict)  # vllm: more vllm.LLM keywords, e.g. {kv_cache_memory_bytes: 4e9}

    def samples(self, benchmark: str) -> int:
        return int(self.n.get(benchmark, 1))

    def check(self) -> None:
        from ..checks import length_problem

        if (problem := length_problem(self.max_tokens, self.max_model_len)) is not None:
            raise Invalid("max_model_len", problem)


@dataclass
class ScoreConfig:
    """Grading and language identification."""

    langid: Literal["langdetect", "lingua", "langid"] = "langdetect"  # the paper's off-target detector
    min_chars: int = 20  # fewer letters than this after stripping math: language undetermined
    reasoning_only: bool = False  # judge the language of the text before </think> only
    timeout: float = 5.0  # seconds per math-verify check
    workers: int = 2  # grader / language-ID worker processes (0: in this process)

    def check(self) -> None:
        from ..checks import workers_problem

        if (problem := workers_problem(self.workers)) is not None:
            raise Invalid("workers", problem)


@dataclass
class Extra:
    """One more trained model of the same run (e.g. one adapter per number of training languages)."""

    name: str
    adapter: str | None = None
    model: str | None = None  # default: the run's `model`
    train_langs: list[str] = field(default_factory=lambda: ["en"])
    x: int | None = None  # training languages on the scaling curve (default: len(train_langs))
    paradigm: str | None = None  # RL, SFT, ... (models are grouped by it)


@dataclass(kw_only=True)
class Config(Recipe):
    model: str | None = None  # trained model: folder, hub id, GGUF file (or its folder), tiny or toy (null: only models/base)
    adapter: str | None = None  # LoRA adapter folder on `model`, served without merging
    name: str | None = None  # its label in tables (default: from the adapter or model path)
    base: str | None = None  # initial model (same forms): evaluated too and compared (gains, TI, MTI, Gen)
    base_name: str | None = None
    train_langs: list[str] = field(default_factory=lambda: ["en"])  # languages the trained model saw
    paradigm: str | None = None  # how it was trained (RL, SFT, ...): models are grouped by it
    models: list[Extra] = field(default_factory=list)  # more trained models compared with the same base
    benchmarks: list[str] = field(default_factory=lambda: ["mgsm"])
    langs: list[str] = field(default_factory=lambda: ["all"])  # all: every language each benchmark has
    data: dict[str, str] = field(default_factory=dict)  # benchmark -> local path (else the hub)
    limit: int | None = None  # first N problems per language
    template_from: str | None = None  # borrow a chat template (instruct model, 'chatml'); base models need one
    prefix: bool = True  # prompt hacking: pre-fill the assistant turn with the language's prefix
    variant: Variant = "paper"  # paper, paper-user, r1, consistency, bare (xling.prompts)
    gen: GenConfig = field(default_factory=GenConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    in_domain: list[str] = field(default_factory=lambda: list(M.IN_DOMAIN))
    out_of_domain: list[str] = field(default_factory=lambda: list(M.OUT_OF_DOMAIN))
    n_boot: int = 1000
    mti_policy: Literal["defined", "paper"] = "defined"  # paper: a benchmark's MTI is None where most TIs are undefined
    scaling: dict[str, int] = field(default_factory=dict)  # model name -> training languages X (default: len(train_langs))
    fit_from: int = 2  # smallest X used in the scaling fits
    plots: bool = True
    cache: str | None = None  # completions cache folder (default: RUN/completions); share it between runs

    def check(self) -> None:
        check_common(self)
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
        if self.fit_from < 1:
            raise Invalid("fit_from", "must be at least 1")


def check_sampling_keys(prefix: str, temperature: float, top_p: float, max_tokens: int, n: dict[str, int],
                        benchmarks) -> None:
    """The sampling settings under `prefix` (gen, pairs[i].gen) as both backends accept them (`xling.sampling`).

    Samples per question must be at least 1; for the benchmarks evaluated, greedy decoding with
    more than one sample (AIME's 16 at temperature 0) is refused.
    """
    from .. import sampling

    found = sampling.problem(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
    if found:
        raise Invalid(f"{prefix}.{found[0]}", found[1])
    for b, k in n.items():
        if k < 1:
            raise Invalid(f"{prefix}.n.{b}", "ask for at least one sample per question")
    for b in benchmarks:
        found = sampling.problem(temperature=temperature, top_p=top_p, n=int(n.get(b, 1)))
        if found:
            raise Invalid(f"{prefix}.n.{b}" if b in n else f"{prefix}.temperature", found[1])


def check_common(cfg) -> None:
    """Checks shared by evaluate and observational."""
    from ..checks import n_boot_problem

    if not cfg.benchmarks:
        raise Invalid("benchmarks", "give at least one benchmark, e.g. benchmarks=mgsm")
    if not cfg.langs:
        raise Invalid("langs", "give languages (e.g. langs=en,de,zh) or langs=all")
    for code in cfg.langs:
        if code != "all" and code not in LANGUAGES:
            raise Invalid("langs", unknown_language_message(code))
    g = cfg.gen
    check_sampling_keys("gen", g.temperature, g.top_p, g.max_tokens, g.n, cfg.benchmarks)
    if g.chunk < 0 or g.batch_size < 1:
        raise Invalid("gen.chunk", "chunk must be 0 (automatic) or more and batch_size at least 1")
    if g.dtype not in DTYPES:
        raise Invalid("gen.dtype", f"'{g.dtype}' is not a dtype generation can load; choose one of: {', '.join(DTYPES)}")
    if g.max_lora_rank is not None:
        from ..generate.lora import ALLOWED_LORA_RANKS

        if g.max_lora_rank not in ALLOWED_LORA_RANKS:
            raise Invalid("gen.max_lora_rank", f"vLLM accepts only {', '.join(map(str, ALLOWED_LORA_RANKS))}")
    if not 0 < g.gpu_memory_utilization <= 1:
        raise Invalid("gen.gpu_memory_utilization", "must be in (0, 1]")
    if cfg.limit is not None and cfg.limit < 1:
        raise Invalid("limit", "must be at least 1 (or null for every problem)")
    if (problem := n_boot_problem(cfg.n_boot)) is not None:
        raise Invalid("n_boot", problem)
    g.check()  # a section given whole in YAML is checked as it is built; one left at its defaults, here
    cfg.score.check()
    if cfg.score.workers < 0 or cfg.score.min_chars < 0:
        raise Invalid("score", "workers >= 0 and min_chars >= 0")
    from ..answers import timeout_problem

    problem = timeout_problem(cfg.score.timeout)
    if problem:
        raise Invalid("score.timeout", problem)
    both = set(cfg.in_domain) & set(cfg.out_of_domain)
    if both:
        raise Invalid("out_of_domain", f"{', '.join(sorted(both))} cannot be both in- and out-of-domain")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """A model to evaluate: its table label and what generates its completions."""

    name: str
    model: str
    adapter: str | None = None
    template_from: str | None = None
    role: str = "trained"  # trained, base (evaluate) or trained/initial (observational)
    train_langs: list[str] = field(default_factory=lambda: ["en"])
    notes: list[str] = field(default_factory=list)
    paradigm: str | None = None
    x: int | None = None  # training languages on the scaling curve (None: len(train_langs))
    gen: dict = field(default_factory=dict)  # this model's own sampling settings (temperature, top_p, max_tokens)

    @property
    def identity(self) -> tuple:
        return (self.model, self.adapter, self.template_from, tuple(sorted(self.gen.items())))


def spec_gen(cfg, spec: ModelSpec) -> GenConfig:
    """The recipe's generation settings with this model's own overrides (observational pairs) applied."""
    from dataclasses import replace

    return replace(cfg.gen, **spec.gen) if spec.gen else cfg.gen


_GENERIC = {"adapter", "adapters", "lora", "final", "model", "output", "best", "last"}


def default_name(model: str, adapter: str | None = None) -> str:
    """A short label: the adapter's folder (its run's name when the folder name is generic), else the model's."""
    path = Path(adapter or model)
    parts = [p for p in path.parts if p not in ("/", ".", "..")]
    if not parts:
        return str(model)
    leaf = parts[-1]
    if len(parts) > 1 and (leaf.lower() in _GENERIC or leaf.startswith("checkpoint")):
        return f"{parts[-2]}/{leaf}" if leaf.startswith("checkpoint") else parts[-2]
    return leaf


def _looks_local(model: str) -> bool:
    return model.startswith((".", "/", "~")) or Path(model).expanduser().exists() or model.count("/") != 1


TINY = {"tiny": True, "tiny-base": False}  # built-in tiny random models (chat template or not), for CPU demos
BUILT_IN = (*TINY, "toy")  # and the pretrained toy model of the classroom demo (xling.toy)


def materialize(model: str) -> str:
    """The folder to load for `model`: `tiny` / `tiny-base` (the tiny random Qwen2 model of `xling.tiny`)
    and `toy` (the pretrained toy model of `xling.toy`) are built once under the xling cache; a GGUF
    file, or a folder holding one, is converted once (`xling.gguf`); anything else is returned as is."""
    if model == "toy":
        from ..toy import build_toy

        return str(build_toy())
    if model not in TINY:
        from .. import gguf

        return gguf.resolve(model)
    from ..tiny import cached_tiny_model

    return str(cached_tiny_model(model))


def check_paths(spec: ModelSpec) -> None:
    """The cheap checks, before anything is loaded or downloaded: a model given as a local path and
    an adapter folder exist (and the adapter is a LoRA folder). Raises XlingError."""
    from ..generate.lora import read_adapter

    if spec.model not in BUILT_IN and _looks_local(spec.model) and not Path(spec.model).expanduser().exists():
        raise XlingError(f"{spec.role} model '{spec.name}': {spec.model} does not exist; give a local model folder "
                         "or a hub id (org/name)")
    hub.check_model(spec.model if spec.model not in TINY else None, "model")
    hub.check_model(spec.template_from, "template_from")
    if spec.adapter:
        try:
            read_adapter(spec.adapter)
        except XlingError as e:
            raise XlingError(f"{spec.role} model '{spec.name}': {e}") from None


def check_model(spec: ModelSpec, backend: str, max_lora_rank: int | None) -> None:
    """Everything that can be checked without loading weights: the model and tokenizer are there,
    a chat template resolves, the adapter is a LoRA folder that vLLM can serve. Raises XlingError."""
    from ..generate.hf import load_tokenizer
    from ..generate.lora import check_adapter
    from ..prompts import chat_template_for

    check_paths(spec)
    tok = load_tokenizer(spec.model)
    try:
        chat_template_for(tok, spec.template_from)
    except XlingError as e:
        raise XlingError(f"{spec.role} model '{spec.name}': {e}") from None
    if spec.adapter:
        try:
            info, rank = check_adapter(spec.adapter, backend, max_lora_rank)
        except XlingError as e:
            raise XlingError(f"{spec.role} model '{spec.name}': {e}") from None
        if rank is not None:
            spec.notes.append(f"adapter rank {info.rank} -> vLLM max_lora_rank {rank}")
        else:
            spec.notes.append(f"adapter rank {info.rank} (PEFT)")
        base = info.base_model
        if base and Path(base).name != Path(spec.model).name and base != spec.model:
            spec.notes.append(f"note: the adapter was trained on {base}, it is applied to {spec.model}")


# --------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------


def benchmark_langs(benchmarks: list[str], langs: list[str], data: dict[str, str]) -> dict[str, list[str]]:
    """The languages to evaluate per benchmark; asking for a language a benchmark lacks is an error.

    `all` means every language the benchmark has (a benchmark with a local copy that can hold any
    language, such as MATH500, is asked for all 11).
    """
    from ..data import SOURCES, get_source

    explicit = [c for c in langs if c != "all"]
    out: dict[str, list[str]] = {}
    for b in benchmarks:
        evals = [n for n, s in SOURCES.items() if s.role != "train"]
        if b not in SOURCES:
            from difflib import get_close_matches

            near = get_close_matches(b, evals, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise XlingError(f"unknown benchmark '{b}'{hint}; benchmarks: {', '.join(evals)}")
        src = get_source(b)
        if src.role == "train":
            raise XlingError(f"{b} is a training set, not a benchmark; benchmarks: "
                             f"{', '.join(n for n, s in SOURCES.items() if s.role != 'train')}")
        has = list(src.langs) or list(CODES)
        if src.open_langs and b in data:
            has = list(CODES)
        if "all" in langs:
            out[b] = list(dict.fromkeys(has + [c for c in explicit if c not in has]))
        else:
            out[b] = list(check_codes(explicit))
        missing = [c for c in out[b] if c not in has]
        if missing:
            raise XlingError(f"benchmark {b} has no {', '.join(missing)} (it has {', '.join(has)}); leave "
                             f"{'them' if len(missing) > 1 else 'it'} out of langs=, or give a local copy that "
                             f"has {'them' if len(missing) > 1 else 'it'} with data.{b}=PATH")
    unknown_data = [b for b in data if b not in benchmarks]
    if unknown_data:
        raise XlingError(f"data.{unknown_data[0]} is set but {unknown_data[0]} is not among benchmarks "
                         f"({', '.join(benchmarks)}); add it to benchmarks= or drop the data path")
    return out


def load_benchmarks(per_bench: dict[str, list[str]], data: dict[str, str], limit: int | None) -> dict[str, dict]:
    """benchmark -> lang -> [Example], every file read before any model is loaded."""
    from ..data import by_lang, load

    out: dict[str, dict] = {}
    for b, ls in per_bench.items():
        split = "test"
        examples = load(b, path=data.get(b), langs=ls, limit=limit, split=split, path_key=f"data.{b}")
        grouped = by_lang(examples)
        missing = [c for c in ls if not grouped.get(c)]
        if missing:
            raise XlingError(f"benchmark {b} loaded no problems for {', '.join(missing)}")
        out[b] = {c: grouped[c] for c in ls}
    return out


# --------------------------------------------------------------------------------------------
# Generation and scoring
# --------------------------------------------------------------------------------------------


@contextmanager
def progress_bar(description: str, total: int) -> Iterator:
    """A rich progress bar with ETA; yields advance(k)."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

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
    from ..generate import core
    from ..generate.completions import local_fingerprint
    from ..prompts import SOLVE

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
    from ..generate.completions import fingerprint, slug

    return f"{slug(default_name(spec.model, spec.adapter))}-{fingerprint(generation_settings(spec, cfg, backend))}"


def prompt_renderer(model: str, template_from: str | None):
    """conversation -> the prompt text the generators render for it (tokenizer only, no weights)."""
    from ..generate.hf import load_tokenizer
    from ..prompts import chat_template_for, render

    key = (model, template_from)
    if key not in _RENDERERS:
        tokenizer = load_tokenizer(model)
        template = chat_template_for(tokenizer, template_from)
        _RENDERERS.clear()  # one model at a time: do not keep every tokenizer alive
        _RENDERERS[key] = lambda conv: render(list(conv), tokenizer, template)
    return _RENDERERS[key]


_RENDERERS: dict = {}


def build_shards(spec: ModelSpec, cfg, data: dict[str, dict], cache: Path, backend: str) -> list:
    """The model's shards; each knows the prompt of every item, so that a cached completion of
    another prompt (a changed template or tokenizer) is generated again rather than reused."""
    from ..generate.completions import Shard
    from ..prompts import build_messages

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
    from ..generate import load_generator

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
    from ..generate.completions import GenerationSettings, generate_shards

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
        return GenerationSettings(shard.n, g.temperature, g.top_p, g.max_tokens, chunk)

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
    settings (`xling.score.read_scored`); the other items of the shard are scored again and the
    shard is rewritten atomically.
    """
    from ..generate.completions import fingerprint
    from ..score import ScoreSettings, item_record, read_scored, score_samples, scored_key, write_scored

    s = cfg.score
    settings = ScoreSettings(s.langid, s.min_chars, s.reasoning_only, s.timeout, s.workers)
    folder = run_dir / "scored" / f"{shards[0].path.parent.parent.name}-{fingerprint(settings.as_dict())}"
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
    from ..answers import Grader

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
    from ..generate import resolve_backend

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


def study_members(specs: list[ModelSpec], scaling: dict[str, int] | None = None) -> list:
    """The trained models compared with the base (none without a base), as `xling.analysis` members."""
    from ..analysis import Member

    base = next((s for s in specs if s.role == "base"), None)
    if base is None:
        return []
    scaling = scaling or {}
    return [Member.of(s.name, base.name, s.train_langs, scaling.get(s.name, s.x if s.x is not None else "auto"),
                      s.paradigm) for s in specs if s.role == "trained"]


def run(cfg: Config, run_dir: Path) -> dict:
    from .. import analysis as A
    from .. import report as R

    specs = model_specs(cfg)
    backend, data = preflight(specs, cfg)
    check_comparisons(specs, data)
    show_plan(specs, data, cfg, backend)
    items, stats = evaluate_specs(specs, cfg, data, run_dir, backend)
    langs = {b: list(per_lang) for b, per_lang in data.items()}
    study = A.analyze(items, study_members(specs, cfg.scaling), langs, models=[s.name for s in specs],
                      in_domain=cfg.in_domain, out_of_domain=cfg.out_of_domain, n_boot=cfg.n_boot, seed=cfg.seed,
                      fit_from=cfg.fit_from, mti_policy=cfg.mti_policy)
    files = R.write_outputs(run_dir, items, study.summary)
    if study.members:
        files["members"] = A.write_members(run_dir / "models.csv", study.members)
    A.show(study)
    figures = A.figures(run_dir, study) if cfg.plots else {}
    report = A.write_report(run_dir, study, figures, title=f"Evaluation: {', '.join(s.name for s in specs)}",
                            settings=R.settings_lines(cfg, backend))
    console.print(f"report: {report}", markup=False)
    return {
        "models": {s.name: {"model": s.model, "adapter": s.adapter, "role": s.role, "train_langs": s.train_langs,
                            "template_from": s.template_from, "paradigm": s.paradigm} for s in specs},
        "backend": backend,
        "mti_policy": cfg.mti_policy,
        "langs": langs,
        "samples": {b: cfg.gen.samples(b) for b in langs},
        "generation": stats,
        **study.as_metrics(),
        "files": {k: str(v) for k, v in {**files, **figures, "report": report}.items()},
    }
