"""The transformers backend: batched `generate` on any device (CPU included), LoRA through PEFT.

Prompts are rendered with `xling.data.prompts.render` (the same template and the same pre-fill
continuation as vLLM's `LLM.chat(..., continue_final_message=True, add_generation_prompt=False)`)
and tokenized without added special tokens, left-padded. Sampling settings are passed explicitly
(temperature and top_p as asked, top_k and repetition penalty off), so a model's
`generation_config.json` does not change them, as with an explicit vLLM `SamplingParams`.

Seeding is per sample, as vLLM's per-request seeds: transformers' `generate` draws every row of a
batch from the one global torch RNG (it takes no per-row generator), so xling samples the next
token itself, in a logits processor (`RowSampler`: temperature and top-p exactly as transformers'
warpers, then inverse-CDF sampling with uniforms drawn from a `torch.Generator` seeded for that
(conversation seed, sample index)) and lets greedy decoding pick it. Sample k of a conversation
therefore depends only on its seed (`sample_seed(seeds[i], k)`, `xling.generate.core`), its
prompt and the model:
not on batch_size, on which other conversations share its batch, or on n (sample 0 of n=1 is
sample 0 of n=16), up to floating-point differences between batch shapes.
"""

from __future__ import annotations

from typing import Sequence

from xling.common.errors import XlingError
from xling.generate.core import Conversation, Sample, check_chat, conversation_seeds, free_memory, sample_seed


class RowSampler:
    """A logits processor that samples each row's next token from its own random stream.

    Temperature and top-p are applied as transformers' `TemperatureLogitsWarper` and
    `TopPLogitsWarper` do; the token is then drawn by inverse CDF with the row's uniform for this
    step, and every other token is masked, so that greedy decoding (`do_sample=False`) emits it.
    `uniforms` is (rows, max_new_tokens), drawn up front from one `torch.Generator` per row.
    """

    def __init__(self, uniforms, prompt_length: int, temperature: float, top_p: float):
        from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

        self.uniforms, self.prompt_length = uniforms, prompt_length
        self.warpers = [TemperatureLogitsWarper(temperature)] + ([TopPLogitsWarper(top_p)] if top_p < 1 else [])

    def __call__(self, input_ids, scores):
        import torch

        for warp in self.warpers:
            scores = warp(input_ids, scores)
        step = min(input_ids.shape[1] - self.prompt_length, self.uniforms.shape[1] - 1)
        probs = torch.softmax(scores.float(), dim=-1)
        cdf = probs.cumsum(dim=-1)
        target = self.uniforms[:, step:step + 1].to(cdf.device) * cdf[:, -1:]
        chosen = torch.searchsorted(cdf, target, right=True).clamp_(max=scores.shape[-1] - 1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, chosen, 0.0)


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

        from xling.data.prompts import chat_template_for

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
        from xling.data.prompts import render

        return render(list(conversation), self.tokenizer, self.template)

    def _config(self, max_tokens: int):
        """Greedy decoding; sampling, when asked for, is done by `RowSampler` (see the module docstring)."""
        from transformers import GenerationConfig

        return GenerationConfig(do_sample=False, max_new_tokens=max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                eos_token_id=self.eos, num_return_sequences=1, repetition_penalty=1.0)

    def chat(self, conversations: list[Conversation], *, n: int, temperature: float, top_p: float,
             max_tokens: int, seed: int, seeds: Sequence[int] | None = None) -> list[list[Sample]]:
        import torch

        from transformers import LogitsProcessorList

        check_chat(conversations, seeds, n, temperature, top_p, max_tokens)
        conv_seeds = conversation_seeds(seed, seeds, len(conversations))
        prompts = [self.render(c) for c in conversations]
        config = self._config(max_tokens)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths pad less
        results: list[list[Sample]] = [[] for _ in prompts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            enc = self.tokenizer([prompts[i] for i in batch], add_special_tokens=False, padding=True,
                                 return_tensors="pt").to(self.device)
            ids = enc["input_ids"].repeat_interleave(n, dim=0)
            mask = enc["attention_mask"].repeat_interleave(n, dim=0)
            processors = LogitsProcessorList()
            if temperature > 0:
                uniforms = torch.stack([torch.rand(max_tokens, generator=torch.Generator().manual_seed(
                    sample_seed(conv_seeds[i], k))) for i in batch for k in range(n)])
                processors.append(RowSampler(uniforms.to(self.device), ids.shape[1], temperature, top_p))
            with torch.inference_mode():
                out = self.net.generate(input_ids=ids, attention_mask=mask, generation_config=config,
                                        logits_processor=processors)
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
