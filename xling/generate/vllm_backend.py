"""The vLLM backend: one `LLM` engine per model, LoRA adapters served unmerged through `LoRARequest`.

Written against vLLM 0.30.0 (see docs in the module `xling.generate.lora` for the rank rules):
`LLM(model, enable_lora=True, max_lora_rank=R, max_loras=1, seed=..., ...)`,
`SamplingParams(n, temperature, top_p, max_tokens, seed)` passed explicitly (vLLM's defaults would
take the model's generation_config and only 16 tokens), and `LLM.chat(conversations, params,
lora_request=..., chat_template=..., add_generation_prompt=..., continue_final_message=...)`;
a conversation ending with an assistant pre-fill is continued (`continue_final_message=True,
add_generation_prompt=False`). The chat template is always passed explicitly (the model's own or
a borrowed one), so that base models render exactly like the hf backend. vllm is imported here only.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import XlingError
from .core import Conversation, Sample, check_chat, free_memory
from .lora import check_adapter


class VLLMGenerator:
    backend = "vllm"

    def __init__(self, model: str, adapter: str | None = None, *, template_from: str | None = None,
                 dtype: str = "auto", seed: int = 0, max_lora_rank: int | None = None,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 enforce_eager: bool = False, tensor_parallel_size: int = 1, max_num_seqs: int | None = None,
                 enable_prefix_caching: bool | None = None, use_tqdm: bool = False,
                 engine_kwargs: dict | None = None):
        from ..prompts import chat_template_for
        from .hf import load_tokenizer

        self.model, self.adapter, self.use_tqdm = str(model), adapter, use_tqdm
        self.tokenizer = load_tokenizer(self.model)
        self.template = chat_template_for(self.tokenizer, template_from)
        self.max_lora_rank = None
        if adapter:  # checked before the engine is built: a too-high rank would fail only at first use
            info, self.max_lora_rank = check_adapter(adapter, "vllm", max_lora_rank)
            self.adapter_rank = info.rank
        try:
            import vllm
            from vllm.lora.request import LoRARequest
        except ImportError as e:
            raise XlingError(f"the vllm backend needs vllm on a CUDA host ({e}); install the GPU lock set "
                             "(requirements-gpu.txt) or use the hf backend") from None
        kwargs: dict = dict(dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                            tensor_parallel_size=tensor_parallel_size, enforce_eager=enforce_eager)
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if max_num_seqs is not None:
            kwargs["max_num_seqs"] = max_num_seqs
        if enable_prefix_caching is not None:
            kwargs["enable_prefix_caching"] = enable_prefix_caching
        if adapter:
            kwargs.update(enable_lora=True, max_lora_rank=self.max_lora_rank, max_loras=1)
        kwargs.update(engine_kwargs or {})
        self._SamplingParams = vllm.SamplingParams
        self.llm = vllm.LLM(self.model, **kwargs)
        self.lora = LoRARequest("xling-adapter", 1, str(adapter)) if adapter else None

    def render(self, conversation: Conversation) -> str:
        from ..prompts import render

        return render(list(conversation), self.tokenizer, self.template)

    def chat(self, conversations: list[Conversation], *, n: int, temperature: float, top_p: float,
             max_tokens: int, seed: int, seeds: Sequence[int] | None = None) -> list[list[Sample]]:
        check_chat(conversations, seeds, n, temperature, top_p, max_tokens)
        results: list[list[Sample]] = [[] for _ in conversations]
        groups: dict[bool, list[int]] = {}
        for i, conv in enumerate(conversations):
            groups.setdefault(conv[-1]["role"] == "assistant", []).append(i)
        for cont, idx in groups.items():
            params = [self._SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                           seed=int(seeds[i]) if seeds is not None else seed) for i in idx]
            outputs = self.llm.chat(
                [list(conversations[i]) for i in idx], params, use_tqdm=self.use_tqdm, lora_request=self.lora,
                chat_template=self.template, add_generation_prompt=not cont, continue_final_message=cont,
            )
            if len(outputs) != len(idx):
                raise RuntimeError(f"vllm returned {len(outputs)} outputs for {len(idx)} conversations")
            for i, out in zip(idx, outputs):
                completions = sorted(out.outputs, key=lambda c: c.index)
                results[i] = [Sample(c.text, c.finish_reason or "unknown", len(c.token_ids or ()), k)
                              for k, c in enumerate(completions)]
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
