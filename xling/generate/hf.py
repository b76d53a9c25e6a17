"""The transformers backend: batched `generate` on any device (CPU included), LoRA through PEFT.

Prompts are rendered with `xling.prompts.render` (the same template and the same pre-fill
continuation as vLLM's `LLM.chat(..., continue_final_message=True, add_generation_prompt=False)`)
and tokenized without added special tokens, left-padded. Sampling settings are passed explicitly
(top_k and repetition penalty off), so a model's `generation_config.json` does not change them,
as with an explicit vLLM `SamplingParams`.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import XlingError
from .core import Conversation, Sample, check_conversations, check_sampling, free_memory


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model)
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise XlingError(f"cannot load the tokenizer of model '{model}' ({type(e).__name__}: {first}); give a "
                         "local model folder or a hub id this machine can reach") from None


def eos_ids(tokenizer, generation_config=None) -> list[int]:
    ids: list[int] = []
    for source in (getattr(generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if source is None:
            continue
        for i in (source if isinstance(source, (list, tuple)) else [source]):
            if i is not None and int(i) not in ids:
                ids.append(int(i))
    return ids


class HFGenerator:
    backend = "hf"

    def __init__(self, model: str, adapter: str | None = None, *, template_from: str | None = None,
                 dtype: str = "auto", device: str | None = None, batch_size: int = 8, seed: int = 0):
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        from ..prompts import chat_template_for

        if batch_size < 1:
            raise XlingError(f"batch_size={batch_size} must be at least 1")
        self.model, self.adapter, self.batch_size, self.seed = str(model), adapter, batch_size, seed
        self.tokenizer = load_tokenizer(self.model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.template = chat_template_for(self.tokenizer, template_from)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        else:
            torch_dtype = getattr(torch, dtype, None)
            if not isinstance(torch_dtype, torch.dtype):
                raise XlingError(f"dtype={dtype!r} is not a torch dtype; use auto, bfloat16, float16 or float32")
        hf_logging.disable_progress_bar()
        try:
            net = AutoModelForCausalLM.from_pretrained(self.model, dtype=torch_dtype)
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise XlingError(f"cannot load model '{self.model}' ({type(e).__name__}: {first})") from None
        if adapter:
            from peft import PeftModel

            net = PeftModel.from_pretrained(net, adapter)
        self.net = net.to(self.device).eval()
        self.eos = eos_ids(self.tokenizer, getattr(net, "generation_config", None))
        if not self.eos:
            raise XlingError(f"model '{self.model}' defines no end-of-sequence token; generation would never stop")

    def render(self, conversation: Conversation) -> str:
        from ..prompts import render

        return render(list(conversation), self.tokenizer, self.template)

    def _config(self, temperature: float, top_p: float, max_tokens: int):
        from transformers import GenerationConfig

        common = dict(max_new_tokens=max_tokens, pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.eos,
                      num_return_sequences=1, repetition_penalty=1.0, top_k=0)
        if temperature == 0:
            return GenerationConfig(do_sample=False, **common)
        return GenerationConfig(do_sample=True, temperature=temperature, top_p=top_p, **common)

    def chat(self, conversations: list[Conversation], *, n: int, temperature: float, top_p: float,
             max_tokens: int, seed: int, seeds: Sequence[int] | None = None) -> list[list[Sample]]:
        import torch

        check_sampling(n, temperature, top_p, max_tokens)
        check_conversations(conversations)
        prompts = [self.render(c) for c in conversations]
        config = self._config(temperature, top_p, max_tokens)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths pad less
        results: list[list[Sample]] = [[] for _ in prompts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            torch.manual_seed(seeds[batch[0]] if seeds is not None else seed + start)
            enc = self.tokenizer([prompts[i] for i in batch], add_special_tokens=False, padding=True,
                                 return_tensors="pt").to(self.device)
            ids = enc["input_ids"].repeat_interleave(n, dim=0)
            mask = enc["attention_mask"].repeat_interleave(n, dim=0)
            with torch.inference_mode():
                out = self.net.generate(input_ids=ids, attention_mask=mask, generation_config=config)
            generated = out[:, ids.shape[1]:].tolist()
            for row, tokens in enumerate(generated):
                conv = batch[row // n]
                results[conv].append(self._sample(tokens, max_tokens, row % n))
        return results

    def _sample(self, tokens: list[int], max_tokens: int, index: int) -> Sample:
        stop = next((k for k, t in enumerate(tokens) if t in self.eos), None)
        if stop is not None:
            text = self.tokenizer.decode(tokens[:stop], skip_special_tokens=True)
            return Sample(text, "stop", stop + 1, index)
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Sample(text, "length" if len(tokens) >= max_tokens else "stop", len(tokens), index)

    def close(self) -> None:
        self.net = None
        free_memory()
