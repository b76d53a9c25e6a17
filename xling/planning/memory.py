"""Peak memory of a training run, term by term: weights, LoRA or full-parameter optimizer state,
activations, logits, the vLLM share and the CUDA context, and whether it fits the device.

In: an `xling.planning.estimate.Estimate` being filled, the training recipe, the device (`Gpu`), the
model's shape and the run's backend, precision and sequence lengths. Out: the estimate's `memory`
terms, `peak_vram_gib`, `fits` and, where it does not fit, `problems` naming the key to change.
"""

from __future__ import annotations

from typing import Any

from xling.planning.estimate import Estimate
from xling.planning.hardware import GIB, Gpu

CONTEXT_GIB = 1.0  # CUDA context and allocator reserve per process


VLLM_OVERHEAD_GIB = 1.0  # vLLM's own activations and CUDA graphs inside its memory share


NF4_BYTES = 0.516  # bytes per 4-bit weight, with block scales (double quantisation)


ADAM_BYTES = 16  # fp32 weight + gradient + two Adam moments, per trained parameter


def precision_of(cfg: Any, dev: Gpu) -> str:
    p = cfg.train.precision
    if p != "auto":
        return p
    return "fp32" if dev.cpu else ("bf16" if dev.bf16 else "fp16")


def peak_memory(est: Estimate, cfg: Any, method: str, dev: Gpu, arch: Any, n_params: int, backend: str, vllm: bool,
            qlora: bool, precision: str, procs: int, P: int, seq: int, logit_len: int, notes: list[str]) -> None:
    """Peak memory per GPU (RAM on the CPU), its terms, and whether it fits."""
    full, unsloth, gpu = backend == "full", backend == "unsloth" and not dev.cpu, not dev.cpu
    half = precision in ("bf16", "fp16")
    act_b = 2 if half else 4
    dtype = cfg.model.dtype
    w_b = 4 if dtype == "float32" or (dtype == "auto" and (full or not half)) else 2
    if qlora:
        weights = (arch.linear_params() * NF4_BYTES + (n_params - arch.linear_params()) * 2) / GIB
    else:
        weights = n_params * w_b / GIB
    h, inter, layers, bs = arch.hidden, arch.intermediate, arch.layers, cfg.train.batch_size
    problems = est.problems
    kv_b = arch.kv_bytes_per_token(2 if gpu else 4)

    # what stays on the GPU for the whole run
    resident: dict[str, float] = {}
    pool = 0.0
    sleeps = False
    if method == "grpo" and vllm and gpu:
        v, g = cfg.vllm, cfg.grpo
        pool = v.gpu_memory_utilization * dev.memory_gib
        v_weights = weights if unsloth else n_params * 2 / GIB
        kv = pool - v_weights - VLLM_OVERHEAD_GIB
        max_len = v.max_model_len or (g.max_prompt_length + g.max_completion_length)
        sleeps = v.standby if unsloth else v.sleep_mode
        if kv <= 0:
            problems.append(f"vLLM's share (vllm.gpu_memory_utilization {v.gpu_memory_utilization:g} x "
                            f"{dev.memory_gib:.1f} = {pool:.1f} GiB) does not hold the weights ({v_weights:.1f} GiB) "
                            f"and its {VLLM_OVERHEAD_GIB:g} GiB overhead: raise vllm.gpu_memory_utilization")
        elif kv * GIB / kv_b < max_len:
            problems.append(f"vLLM's KV cache ({kv:.1f} GiB) holds {kv * GIB / kv_b:,.0f} tokens, fewer than one "
                            f"sequence of {max_len:,} (vLLM refuses to start): raise vllm.gpu_memory_utilization")
        else:
            mean = est.generated_tokens / max(1, est.rollouts)
            notes.append(f"vLLM takes {v.gpu_memory_utilization:g} of the GPU ({pool:.1f} GiB): weights "
                         f"{v_weights:.1f}{' (shared with training)' if unsloth else ''}, "
                         f"{VLLM_OVERHEAD_GIB:g} for vLLM itself, "
                         f"KV cache {kv:.1f} GiB = {kv * GIB / kv_b / 1e3:,.0f}k tokens, "
                         f"~{kv * GIB / kv_b / (P + mean):,.0f} rollouts at once")
        resident["vLLM share"] = pool
    if full:
        resident["weights + gradients + Adam (fp32)"] = n_params * ADAM_BYTES / GIB / procs
        notes.append(f"full-parameter: {ADAM_BYTES} B per parameter (fp32 weight, gradient, Adam moments)"
                     + (f", sharded over {procs} GPUs (ZeRO-3 / FSDP)" if procs > 1 else ""))
    else:
        if not (unsloth and "vLLM share" in resident):
            resident["weights"] = weights
        lora_n, unknown = arch.lora_params(cfg.lora.r, cfg.lora.targets)
        resident["LoRA + Adam"] = lora_n * ADAM_BYTES / GIB
        if unknown:
            notes.append(f"LoRA targets not counted (not a projection the planner knows): {', '.join(unknown)}")

    # what a training micro-batch adds
    training: dict[str, float] = {}
    layer_set = bs * seq * (7 * h + 4 * inter) * act_b / GIB  # one layer's tensors saved for backward
    if cfg.train.gradient_checkpointing:
        stored = 0.0 if unsloth else bs * seq * h * act_b * layers / GIB
        training["activations"] = stored + layer_set
    else:
        training["activations"] = layer_set * layers
    notes.append(f"activations: batch {bs} x {seq:,} tokens (the longest sequence), {'16' if half else '32'}-bit"
                 + (", one layer's worth kept plus one hidden state per layer" if cfg.train.gradient_checkpointing
                    else ", every layer's kept (no gradient checkpointing)"))
    if unsloth:
        notes.append("Unsloth offloads the checkpointed activations to CPU RAM and computes log-probs in chunks "
                     "(logits not counted)")
    else:
        logit_b = 4 if method != "grpo" else act_b  # transformers' SFT loss upcasts the logits to fp32
        training["logits"] = bs * logit_len * arch.vocab * logit_b / GIB
    if method == "grpo" and cfg.grpo.beta > 0 and full:
        training["reference model"] = n_params * w_b / GIB

    # what transformers generate adds (GRPO without vLLM: every rollout of the step at once)
    transient = training
    if method == "grpo" and not (vllm and gpu):
        rollouts = cfg.train.questions_per_step * cfg.grpo.num_generations / procs
        cache = rollouts * (P + cfg.grpo.max_completion_length) * kv_b / GIB
        if cache > sum(training.values()):
            transient = {"generation KV cache": cache}
            notes.append(f"generation by transformers: {rollouts:,.0f} rollouts at once with their KV cache up to "
                         f"{P + cfg.grpo.max_completion_length:,} tokens, more than a training micro-batch needs")
    context = {"CUDA context": CONTEXT_GIB} if gpu else {}
    terms = {**resident, **transient, **context}
    peak = sum(terms.values())
    if sleeps:  # the engine gives its KV cache (and TRL's its weights) back while the model trains
        kept = weights if unsloth else 0.0
        peak = max(pool, kept + sum(transient.values())) + sum(v for k, v in resident.items() if k != "vLLM share") \
            + CONTEXT_GIB
        notes.append("vLLM sleeps while the model trains (vllm.standby / vllm.sleep_mode): the larger phase counts")
    if method == "rft" and vllm and gpu:
        r = cfg.rft
        sample_pool = r.gpu_memory_utilization * dev.memory_gib
        if sample_pool - n_params * 2 / GIB - VLLM_OVERHEAD_GIB < (P + r.max_tokens) * kv_b / GIB:
            problems.append(f"RFT sampling: vLLM's share (rft.gpu_memory_utilization {r.gpu_memory_utilization:g} x "
                            f"{dev.memory_gib:.1f} GiB) does not hold the weights and one {P + r.max_tokens:,}-token "
                            "sequence: raise rft.gpu_memory_utilization")
        notes.append(f"RFT samples first, with vLLM in a process of its own ({sample_pool:.1f} GiB), then trains")
        peak = max(peak, sample_pool + CONTEXT_GIB)
    est.memory = {k: round(v, 2) for k, v in terms.items()}
    est.peak_vram_gib = peak
    if gpu and peak > dev.memory_gib:
        problems.insert(0, f"estimated peak {peak:.1f} GiB exceeds its {dev.memory_gib:.1f} GiB")
    if dev.cpu and dev.memory_gib and peak > dev.memory_gib:
        notes.append(f"the estimated peak ({peak:.1f} GiB) exceeds this machine's {dev.memory_gib:.0f} GiB of RAM")
        est.fits = False
    else:
        est.fits = not problems
    if not est.exact:
        notes.append("memory is estimated for a guessed model shape: a run is not refused on it")

