"""A plan before launch: what a training run or an evaluation will cost, estimated from its recipe.

    est = estimate_training(cfg)                # a train-grpo / train-sft / train-rft Config
    est = estimate_training(cfg, "h100-80gb")   # planned for a named GPU (GPUS) instead of the one here
    print("\\n".join(est.lines()))               # steps, rollouts, tokens, GPU-hours, peak VRAM, assumptions
    Estimate.total([est_a, est_b])              # a sweep's totals

Pure arithmetic on the recipe: no data is loaded and nothing heavy is imported. Steps follow
TRL 1.14.2's own counting (GRPO's RepeatSampler keeps only full steps of
`train.questions_per_step` prompts, times `grpo.num_iterations`; SFT keeps the last, smaller
step of an epoch); time is FLOP over an assumed throughput plus generated tokens over an assumed
decode rate; memory (`xling.planning.memory`) adds the weights, LoRA and optimizer state, activations,
logits and the vLLM share. Every assumption is listed with the numbers, which are estimates, not
measurements; `xling.planning.estimate` holds the record and how it prints.

`preflight()` is what a training run calls before loading anything: it refuses a configuration
that cannot fit in the GPU's memory (with the numbers) and, on CPU, says up front when a run will
take more than an hour and which keys shrink it. `python -m xling.planning.plan` prints the README's table;
`python -m xling.planning.plan RECIPE key=value ...` the plan of one recipe.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from xling.common.config import Invalid
from xling.common.errors import XlingError
from xling.planning.estimate import Estimate, count_text, duration, flop_text, gib_text, hours_text
from xling.planning.hardware import GIB, GPUS, Gpu, detect_gpu, model_shape, unknown_gpu_message
from xling.planning import hardware
from xling.planning.memory import CONTEXT_GIB, VLLM_OVERHEAD_GIB, peak_memory, precision_of

__all__ = ["GPUS", "Gpu", "detect_gpu", "PlanConfig", "Estimate", "estimate_training", "estimate_evaluation",
           "preflight", "describe"]

PROMPT_TOKENS = 200  # assumed mean prompt: chat template, system message, problem
SAMPLED_TOKENS = 700  # assumed mean sampled completion (GRPO rollouts, RFT samples, evaluation)
SOLUTION_TOKENS = 400  # assumed mean reference solution (SFT)
HF_DECODE_SLOWDOWN = 5.0  # transformers generate on a GPU, relative to vLLM
CPU_WARN_HOURS = 1.0
SHRINK_KEYS = {
    "grpo": ("train.max_steps", "grpo.num_generations", "grpo.max_completion_length", "data.n",
             "train.questions_per_step"),
    "sft": ("train.max_steps", "train.epochs", "data.n", "train.questions_per_step"),
    "rft": ("rft.samples", "rft.max_tokens", "train.max_steps", "train.epochs", "data.n"),
}
SHRINK_EXAMPLE = {
    "grpo": "train.max_steps=2 train.questions_per_step=2 grpo.num_generations=4 grpo.max_completion_length=64 "
            "train.batch_size=4",
    "sft": "train.max_steps=2 data.n=16 train.questions_per_step=4 train.batch_size=2",
    "rft": "data.n=8 rft.samples=2 rft.max_tokens=64 train.max_steps=2 train.questions_per_step=4 train.batch_size=2",
}


@dataclass(kw_only=True)
class PlanConfig:
    """The recipe section `plan`: what the estimate assumes. It changes no result."""

    gpu: str | None = None  # plan for this GPU (plan.gpu=h100-80gb; 'cpu'); null: the one found here
    gpus: int | None = None  # GPUs (processes) of the run; null: WORLD_SIZE under accelerate launch, else 1
    prompt_tokens: int = PROMPT_TOKENS  # assumed mean prompt length in tokens
    completion_tokens: int | None = None  # assumed mean completion; null: 700 sampled, 400 SFT solutions
    train_tflops: float | None = None  # measured effective training TFLOP/s (default: from the GPU table)
    decode_tflops: float | None = None  # measured effective decode TFLOP/s (2N FLOP per token)
    memory_check: bool = True  # refuse, before loading, a run whose estimated peak exceeds the GPU's memory

    def check(self) -> None:
        if self.gpu is not None and self.gpu.strip().lower() not in (*GPUS, "cpu"):
            raise Invalid("gpu", unknown_gpu_message(self.gpu))
        for key in ("gpus", "prompt_tokens", "completion_tokens"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise Invalid(key, "must be at least 1")
        for key in ("train_tflops", "decode_tflops"):
            value = getattr(self, key)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise Invalid(key, "must be a positive number of TFLOP/s")


PLAN_KEYS = frozenset({"plan", *(f"plan.{k}" for k in PlanConfig.__dataclass_fields__)})


# -- training ----------------------------------------------------------------------------------------

def method_of(cfg: Any) -> str:
    return "grpo" if hasattr(cfg, "grpo") else "rft" if hasattr(cfg, "rft") else "sft"


def _device(gpu: str | Gpu | None, pc: PlanConfig) -> Gpu:
    if isinstance(gpu, Gpu):
        return gpu
    return hardware.device(gpu if gpu is not None else pc.gpu)


def _rates(dev: Gpu, pc: PlanConfig, notes: list[str], training: bool = True) -> tuple[float, float]:
    """Effective training and decode FLOP/s, with the assumption that gives them."""
    train = pc.train_tflops * 1e12 if pc.train_tflops else dev.train_flops
    decode = pc.decode_tflops * 1e12 if pc.decode_tflops else dev.decode_flops
    if dev.cpu:
        notes.append(f"CPU: {train / 1e9:.0f} GFLOP/s effective ({dev.cores} cores x "
                     f"{hardware.CPU_FLOPS_PER_CORE / 1e9:.0f}), plus {hardware.CPU_TOKEN_OVERHEAD_S * 1e3:.1f} ms per "
                     "generated token (transformers generate)")
    else:
        src_t = "plan.train_tflops" if pc.train_tflops else (f"{hardware.TRAIN_SHARE_OF_PEAK:.0%} of the "
                                                             f"{dev.peak_tflops:.0f} TFLOP/s dense peak")
        src_d = "plan.decode_tflops" if pc.decode_tflops else (f"{hardware.DECODE_FLOP_PER_BYTE:.0f} FLOP per byte of "
                                                               f"{dev.bandwidth_tbs} TB/s")
        if training:
            notes.append(f"throughput: training {train / 1e12:.0f} TFLOP/s ({src_t}), decode {decode / 1e12:.0f} "
                         f"TFLOP/s ({src_d}); calibrate with train.max_steps=2, then plan.train_tflops / "
                         "plan.decode_tflops")
        else:
            notes.append(f"throughput: decode {decode / 1e12:.0f} TFLOP/s ({src_d})")
    return train, decode


def _choose_backend(cfg: Any, method: str, dev: Gpu, procs: int, backend: str | None, use_vllm: bool | None,
                    notes: list[str]) -> tuple[str, bool]:
    if backend is None:
        backend = cfg.train.backend
        if backend == "auto":
            if dev.cpu:
                backend = "peft"
            elif procs == 1 and not cfg.model.adapter:
                backend = "unsloth"
                notes.append("train.backend=auto: unsloth assumed (installed with the GPU lock set)")
            else:
                backend = "peft"
    if use_vllm is None:
        if method == "grpo":
            enabled = cfg.vllm.enabled
            use_vllm = (not dev.cpu) if enabled is None else bool(enabled)
            if enabled is None and use_vllm:
                notes.append("vllm.enabled=null: vLLM rollouts assumed (installed with the GPU lock set)")
        elif method == "rft":
            use_vllm = cfg.rft.generator == "vllm" or (cfg.rft.generator == "auto" and not dev.cpu)
        else:
            use_vllm = False
    return backend, bool(use_vllm)


def _mean_completion(pc: PlanConfig, random_model: bool, vocab: int, cap: int, default: int, notes: list[str],
                     what: str, key: str = "plan.completion_tokens") -> int:
    if pc.completion_tokens:
        mean = min(pc.completion_tokens, cap)
        notes.append(f"{what}: {mean:,} tokens on average ({key}, at most {cap:,})")
    elif random_model:
        mean = round(vocab * (1 - math.exp(-cap / vocab)))
        notes.append(f"{what}: the tiny random model samples near-uniformly and stops with chance 1/{vocab:,} per "
                     f"token: {mean:,} tokens on average (cap {cap:,})")
    else:
        mean = min(default, cap)
        notes.append(f"{what}: {mean:,} tokens on average (assumed; {key}=N, cap {cap:,})")
    return mean


def estimate_training(cfg: Any, gpu: str | Gpu | None = None, *, backend: str | None = None,
                      use_vllm: bool | None = None, processes: int | None = None) -> Estimate:
    """The plan of a training recipe (train-grpo, train-sft or train-rft Config) on `gpu` (a GPUS name,
    'cpu', or None: `plan.gpu`, else the GPU found here). `backend`, `use_vllm` and `processes` are a
    resolved run's (`xling.train.backends.Plan`); left out, they are assumed from the recipe."""
    from xling.planning.batches import batch_plan, world_size

    method = method_of(cfg)
    pc: PlanConfig = getattr(cfg, "plan", None) or PlanConfig()
    dev = _device(gpu, pc)
    notes: list[str] = [dev.assumption] if dev.assumption else []
    procs = processes or pc.gpus or world_size()
    shape = model_shape(cfg.model.name)
    arch, n_params = shape.arch, shape.arch.params()
    tiny = shape.random
    notes.append(f"model {cfg.model.name}: {count_text(n_params)} parameters ({shape.source})")
    backend, vllm = _choose_backend(cfg, method, dev, procs, backend, use_vllm, notes)
    full = backend == "full"
    qlora = bool(cfg.lora.qlora) and not full and not dev.cpu
    train_rate, decode_rate = _rates(dev, pc, notes)

    # the training set, as xling.data.trainset builds it
    langs = cfg.data.languages()
    rows = cfg.data.n if cfg.data.build == "mix" else cfg.data.n * len(langs)
    how = "data.n in all" if cfg.data.build == "mix" else f"data.n {cfg.data.n:,} x {len(langs)} language(s)"
    notes.append(f"training set: {rows:,} prompts ({how}: {', '.join(langs)}), assumed complete (no rejected "
                 "translations, no prompt over the length limit, a source with that many problems)")
    P = pc.prompt_tokens
    notes.append(f"prompts: {P:,} tokens on average (assumed; plan.prompt_tokens=N)")

    generations = cfg.grpo.num_generations if method == "grpo" else 1
    try:
        batch = batch_plan(cfg.train, generations, procs)
    except Invalid as e:
        raise XlingError(f"recipe key '{e.key}' with {procs} GPU(s): {e.message}") from None
    details: list[str] = []
    problems: list[str] = []
    est = Estimate(label="", method=method, gpu=dev.key, device=dev.describe(), gpus=1 if dev.cpu else procs,
                   memory_gib=dev.memory_gib, exact=shape.exact, details=details, assumptions=notes,
                   problems=problems)
    t = cfg.train
    k_train = 2 + (4 if full else 2) + (2 if t.gradient_checkpointing else 0)
    k_parts = ["forward 2N", f"backward {'4N' if full else '2N (LoRA: activation gradients only)'}"]
    if t.gradient_checkpointing:
        k_parts.append("recompute 2N")
    train_seconds = gen_seconds = 0.0

    if method == "grpo":
        g = cfg.grpo
        Q, G, mu = batch.questions_per_step, g.num_generations, g.num_iterations
        full_steps = rows // Q
        per_epoch = full_steps * mu
        steps = t.max_steps if t.max_steps > 0 else math.ceil(t.epochs * per_epoch)
        if full_steps == 0:  # the run itself stops with an error (xling.train.grpo.check_steps)
            details.append(f"the training set's {rows:,} prompts are fewer than one step's "
                           f"train.questions_per_step={Q}: nothing would be trained")
            steps = 0
        details.append(f"a step: {Q} questions x {G} rollouts = {Q * G:,} completions, grad_accum {batch.grad_accum}"
                       + (f", each generation used for {mu} steps" if mu > 1 else ""))
        left = rows % Q
        details.append(f"an epoch: {rows:,} // {Q} = {full_steps:,} step(s)" + (f" x {mu} iterations" if mu > 1 else "")
                       + (f"; TRL drops the incomplete last step, so {left:,} prompt(s) wait each epoch" if left else "")
                       + (f"; train.max_steps={t.max_steps}" if t.max_steps > 0 else f"; {t.epochs:g} epoch(s)"))
        gen_batches = math.ceil(steps / mu)
        C = _mean_completion(pc, tiny, arch.vocab, g.max_completion_length, SAMPLED_TOKENS, notes, "rollouts")
        est.rollouts = gen_batches * Q * G
        est.generated_tokens = est.rollouts * C
        est.trained_tokens = steps * Q * G * (P + C)
        if (vllm and g.importance_sampling_correction) or mu > 1:
            k_train += 2 / mu
            k_parts.append("old log-probs 2N" + (f"/{mu}" if mu > 1 else ""))
        if g.beta > 0:
            k_train += 2
            k_parts.append("reference 2N")
        train_seconds = k_train * n_params * est.trained_tokens / (train_rate * procs)
        gen_seconds = _decode_seconds(est.generated_tokens, n_params, dev, decode_rate, procs, vllm, notes)
        est.steps = steps
        seq_train, logit_len = P + g.max_completion_length, g.max_completion_length
    else:
        if method == "rft":
            r = cfg.rft
            est.rollouts = rows * r.samples
            C = _mean_completion(pc, tiny, arch.vocab, r.max_tokens, SAMPLED_TOKENS, notes, "RFT samples")
            est.generated_tokens = est.rollouts * C
            gen_seconds = _decode_seconds(est.generated_tokens, n_params, dev, decode_rate, 1, vllm, notes)
            details.append(f"sampling: {rows:,} problems x rft.samples {r.samples} = {est.rollouts:,} answers")
            rows = rows * r.keep
            notes.append(f"RFT keeps rft.keep={r.keep} answer(s) for every problem (an upper bound: problems with no "
                         "correct answer add none)")
        else:
            C = _mean_completion(pc, tiny, arch.vocab, max(1, cfg.sft.max_length - P), SOLUTION_TOKENS, notes,
                                 "SFT solutions")
        E, bs = batch.questions_per_step, t.batch_size
        micro = math.ceil(rows / (bs * procs))
        per_epoch = math.ceil(micro / batch.grad_accum)
        steps = t.max_steps if t.max_steps > 0 else math.ceil(t.epochs * per_epoch)
        full_epochs, part = divmod(steps, per_epoch)
        examples = full_epochs * rows + min(part * E, rows)
        details.append(f"SFT: a step = {E} examples (batch {bs} x grad_accum {batch.grad_accum}"
                       + (f" x {procs} GPUs" if procs > 1 else "") + f"); an epoch of {rows:,} = ceil({micro:,} "
                       f"micro-batches / {batch.grad_accum}) = {per_epoch:,} step(s), the last one smaller; "
                       + (f"train.max_steps={t.max_steps}" if t.max_steps > 0 else f"{t.epochs:g} epoch(s)"))
        est.steps = steps
        est.trained_tokens = examples * (P + C)
        train_seconds = k_train * n_params * est.trained_tokens / (train_rate * procs)
        seq_train = min(cfg.sft.max_length, 2 * (P + C))
        logit_len = seq_train
        notes.append(f"SFT batches padded to {seq_train:,} tokens (twice the mean example, at most sft.max_length)")

    flop = k_train * n_params * est.trained_tokens
    details.append(f"FLOP per trained token: {' + '.join(k_parts)} = {k_train:.3g}N (attention not counted): "
                   f"{flop_text(flop / max(1, est.steps))} per step")
    total_seconds = train_seconds + gen_seconds
    est.hours = total_seconds / 3600
    est.step_seconds = total_seconds / est.steps if est.steps else None
    notes.append("not counted: start-up (loading, vLLM engine), reward grading, checkpoint saves")
    precision = precision_of(cfg, dev)
    peak_memory(est, cfg, method, dev, arch, n_params, backend, vllm, qlora, precision, procs, P, seq_train, logit_len,
            notes)
    lora = "" if full else f" {'QLoRA' if qlora else 'LoRA'} r={cfg.lora.r}"
    share = ""
    if method == "grpo" and vllm:
        share = f", vLLM {cfg.vllm.gpu_memory_utilization:g}"
    elif method == "rft" and vllm:
        share = f", vLLM sampling {cfg.rft.gpu_memory_utilization:g}"
    est.label = (f"{method.upper()} {cfg.model.name}, {backend}{lora}{share}, batch {t.batch_size}"
                 + ("" if t.gradient_checkpointing else ", no gradient checkpointing"))
    return est


def _decode_seconds(tokens: int, n_params: int, dev: Gpu, rate: float, procs: int, vllm: bool,
                    notes: list[str]) -> float:
    if dev.cpu:
        per_token = hardware.CPU_TOKEN_OVERHEAD_S + 2 * n_params / rate
        return tokens * per_token
    tok_s = rate / (2 * n_params) * procs
    if not vllm:
        tok_s /= HF_DECODE_SLOWDOWN
        notes.append(f"generation by transformers (no vLLM), assumed {HF_DECODE_SLOWDOWN:g}x slower than vLLM: "
                     f"~{tok_s:,.0f} tokens/s")
    else:
        notes.append(f"vLLM decode ~{tok_s:,.0f} tokens/s for this model (2N FLOP per token; prefill not counted)")
    return tokens / tok_s


# -- evaluation --------------------------------------------------------------------------------------

def estimate_evaluation(n_prompts: int, samples: int, max_tokens: int, model: str, gpu: str | Gpu | None = None, *,
                        completion_tokens: int | None = None, prompt_tokens: int = PROMPT_TOKENS,
                        gpu_memory_utilization: float = 0.9) -> Estimate:
    """The plan of generating `samples` answers of at most `max_tokens` for each of `n_prompts` prompts with
    `model` (vLLM on a GPU, transformers on the CPU)."""
    if n_prompts < 0 or samples < 1 or max_tokens < 1:
        raise XlingError(f"an evaluation plan needs n_prompts >= 0, samples >= 1 and max_tokens >= 1 "
                         f"(got {n_prompts}, {samples}, {max_tokens})")
    pc = PlanConfig(completion_tokens=completion_tokens, prompt_tokens=prompt_tokens)
    dev = _device(gpu, pc)
    notes: list[str] = [dev.assumption] if dev.assumption else []
    shape = model_shape(model)
    arch, n_params = shape.arch, shape.arch.params()
    notes.append(f"model {model}: {count_text(n_params)} parameters ({shape.source})")
    _, decode = _rates(dev, pc, notes, training=False)
    C = _mean_completion(pc, shape.random, arch.vocab, max_tokens, SAMPLED_TOKENS,
                         notes, "answers", key="completion_tokens")
    est = Estimate(label=f"evaluation of {model}: {n_prompts:,} prompts x {samples} sample(s), at most "
                         f"{max_tokens:,} tokens", method="evaluate", gpu=dev.key, device=dev.describe(),
                   memory_gib=dev.memory_gib, exact=shape.exact, assumptions=notes)
    est.rollouts = n_prompts * samples
    est.generated_tokens = est.rollouts * C
    est.hours = _decode_seconds(est.generated_tokens, n_params, dev, decode, 1, not dev.cpu, notes) / 3600
    if dev.cpu:
        kv = samples * (prompt_tokens + max_tokens) * arch.kv_bytes_per_token(4) / GIB
        est.memory = {"weights": round(n_params * 4 / GIB, 2), "KV cache": round(kv, 2)}
        est.peak_vram_gib = sum(est.memory.values())
        est.fits = not dev.memory_gib or est.peak_vram_gib <= dev.memory_gib
        return est
    pool = gpu_memory_utilization * dev.memory_gib
    weights = n_params * 2 / GIB
    kv = pool - weights - VLLM_OVERHEAD_GIB
    est.memory = {"vLLM share": round(pool, 2), "CUDA context": CONTEXT_GIB}
    est.peak_vram_gib = pool + CONTEXT_GIB
    if kv * GIB / arch.kv_bytes_per_token(2) < prompt_tokens + max_tokens:
        est.problems.append(f"vLLM's share ({gpu_memory_utilization:g} x {dev.memory_gib:.1f} GiB) does not hold the "
                            f"weights ({weights:.1f} GiB) and one {prompt_tokens + max_tokens:,}-token sequence")
    if est.peak_vram_gib > dev.memory_gib:
        est.problems.append(f"vLLM's share and the CUDA context ({est.peak_vram_gib:.1f} GiB) exceed the GPU")
    est.fits = not est.problems
    return est


# -- what runs call ------------------------------------------------------------------------------------

def describe(cfg: Any) -> list[str]:
    """The plan of a training recipe as printed by --dry-run."""
    return estimate_training(cfg).lines()


def preflight(cfg: Any, resolved: Any, done_steps: int = 0) -> list[str]:
    """Before a training run loads anything: refuse what cannot fit this GPU (XlingError, with the numbers);
    return the lines to print (a one-line plan; on CPU, a warning when it takes over an hour).

    `resolved` is the run's `xling.train.backends.Plan` (backend, use_vllm, processes, cuda)."""
    pc: PlanConfig = getattr(cfg, "plan", None) or PlanConfig()
    dev = detect_gpu() if resolved.cuda else hardware.cpu_device()
    est = estimate_training(cfg, dev, backend=resolved.backend, use_vllm=resolved.use_vllm,
                            processes=resolved.processes)
    method = method_of(cfg)
    if resolved.cuda and dev.cpu:  # CUDA is claimed but torch sees no GPU: nothing to check against
        return [f"plan (estimate): {est.summary()}"]
    if not dev.cpu and not est.fits and est.exact and pc.memory_check:
        terms = ", ".join(f"{k} {gib_text(v)}" for k, v in est.memory.items())
        raise XlingError(f"this run does not fit {dev.key}: {'; '.join(est.problems)} (estimate, GiB: {terms}); "
                         f"{_fit_hint(cfg, method, est)}; or plan.memory_check=false to try anyway")
    left = max(0, est.steps - done_steps)
    hours_left = est.hours * (left / est.steps) if est.steps else est.hours
    lines = [f"plan (estimate): {est.summary()}" + (f"; {left} step(s) left" if done_steps else "")]
    if dev.cpu and hours_left > CPU_WARN_HOURS:
        per = f", ~{duration(est.step_seconds)} per step" if est.step_seconds else ""
        lines.append(f"note: on this CPU the run is estimated at ~{hours_text(hours_left)} hours ({left} steps{per}); "
                     f"these recipe sizes are meant for a GPU. Keys that shrink it: {', '.join(SHRINK_KEYS[method])} "
                     f"(e.g. {SHRINK_EXAMPLE[method]})")
    return lines


def _fit_hint(cfg: Any, method: str, est: Estimate) -> str:
    lower = ["train.batch_size", {"grpo": "grpo.max_completion_length", "rft": "rft.gpu_memory_utilization"}.get(
        method, "sft.max_length")]
    if "vLLM share" in est.memory:
        lower.append("vllm.gpu_memory_utilization")
    switch = []
    if cfg.train.backend == "full":
        switch.append("train.backend=peft (LoRA)")
    elif not cfg.lora.qlora:
        switch.append("lora.qlora=true")
    if not cfg.train.gradient_checkpointing:
        switch.append("train.gradient_checkpointing=true")
    return f"lower {', '.join(lower[:-1])} or {lower[-1]}" + "".join(f"; or set {s}" for s in switch)


# -- python -m xling.planning.plan ------------------------------------------------------------------------------

# The README's table: (recipe, overrides, GPU).
README_ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("grpo-en", (), "rtx4090-24gb"),
    ("grpo-en", (), "l4-24gb"),
    ("grpo-en", ("train.backend=peft",), "rtx4090-24gb"),
    ("grpo-en", ("train.backend=peft", "train.batch_size=2"), "rtx4090-24gb"),
    ("grpo-en", ("train.batch_size=16",), "a100-80gb"),
    ("grpo-en", ("train.batch_size=16",), "h100-80gb"),
    ("grpo-en", ("model.name=Qwen/Qwen2.5-3B-Instruct", "lora.qlora=true", "train.batch_size=4"), "rtx4090-24gb"),
    ("grpo-en", ("model.name=Qwen/Qwen2.5-3B-Instruct", "train.batch_size=16"), "a100-80gb"),
    ("grpo-en", ("model.name=Qwen/Qwen2.5-3B-Instruct", "train.batch_size=16"), "h100-80gb"),
    ("grpo-en", ("model.name=meta-llama/Llama-3.2-3B-Instruct", "train.batch_size=16"), "h100-80gb"),
    ("grpo-en", ("model.name=Qwen/Qwen2.5-7B-Instruct", "train.batch_size=8"), "h100-80gb"),
    ("grpo-parallel", ("data.k=7", "train.batch_size=16"), "h100-80gb"),
    ("sft", (), "rtx4090-24gb"),
    ("rft", (), "rtx4090-24gb"),
)


def readme_table() -> list[str]:
    from xling.runs.cli import resolve

    rows = ["| recipe | model | GPU | settings | steps | peak VRAM (GiB) | min/step | GPU-hours |",
            "|---|---|---|---|---|---|---|---|"]
    for recipe, overrides, gpu in README_ROWS:
        cfg, _ = resolve(recipe, [*overrides, f"plan.gpu={gpu}"])
        est = estimate_training(cfg)
        settings = est.label.split(", ", 1)[1]
        extra = [o for o in overrides if o.startswith("data.")]
        model = str(cfg.model.name).rsplit("/", 1)[-1]
        mem = f"{est.peak_vram_gib:.1f} of {est.memory_gib:.0f}" + ("" if est.fits else " (does not fit)")
        per_step = f"{est.step_seconds / 60:.1f}" if est.step_seconds else "-"
        rows.append(f"| `{recipe}`{' ' + ' '.join(extra) if extra else ''} | {model} | {gpu} | {settings} | {est.steps} "
                    f"| {mem} | {per_step} | {est.gpu_hours:.2f} |")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    from xling.common.console import module_main

    args = list(sys.argv[1:] if argv is None else argv)
    return module_main(lambda: print_plan(args))


def print_plan(args: Sequence[str]) -> None:
    """No arguments: the README's table; RECIPE key=value ...: the plan of that training recipe."""
    from xling.runs.cli import resolve

    if not args:
        print("\n".join(readme_table()))
        return
    cfg, _ = resolve(args[0], args[1:])
    if not hasattr(cfg, "train"):
        raise XlingError(f"recipe {args[0]} is not a training recipe; the planner estimates training runs")
    print("\n".join(estimate_training(cfg).lines()))


if __name__ == "__main__":
    sys.exit(main())
