"""A stand-in for the pinned vLLM 0.30.0 that accepts what it accepts and refuses what it refuses.

Mirrored from the wheel's sources (vllm-0.30.0, read for these tests):

- `LLM(model, **kwargs)` (vllm/entrypoints/llm.py `LLM.__init__`): its own keywords, and every
  other keyword goes to `EngineArgs(**kwargs)`, a dataclass that raises TypeError for a name it
  does not have. The accepted names are the wheel's own, listed in fixtures/vllm-0.30.0-names.txt.
  With `enable_lora=True`, `max_lora_rank` must be one of `MaxLoRARanks = Literal[1, 8, 16, 32,
  64, 128, 256, 320, 512]` (vllm/config/lora.py), else pydantic refuses the LoRAConfig.
- `SamplingParams(...)` (vllm/sampling_params.py): a msgspec Struct (an unknown keyword is a
  TypeError "Unexpected keyword argument"); `__post_init__` raises a temperature in (0, 0.01) to
  0.01 and then `_verify_args` refuses a non-finite temperature ("temperature must be a finite
  number"), one below 0 ("temperature must be non-negative") or above 2 ("temperature must be in
  [0, 2]"), top_p outside (0, 1], max_tokens < 1, n < 1; `_verify_greedy_sampling` refuses n > 1
  at temperature 0 ("n must be 1 when using greedy sampling"). These raise VLLMValidationError
  (vllm/exceptions.py: a VLLMClientError, not a ValueError).
- `LoRARequest(lora_name, lora_int_id, lora_path="")` (vllm/lora/request.py `__post_init__`):
  "id must be > 0", "lora_path cannot be empty".
- `LLM.chat(messages, sampling_params=None, use_tqdm=True, lora_request=None, chat_template=None,
  chat_template_content_format="auto", add_generation_prompt=True, continue_final_message=False,
  tools=None, chat_template_kwargs=None, tokenization_kwargs=None, mm_processor_kwargs=None)`:
  `chat_template=None` renders with the model's own template (a model without one cannot chat);
  a LoRA request on an engine without LoRA raises VLLMValidationError "LoRA is not enabled!"
  (vllm/v1/engine/input_processor.py `_validate_lora`); transformers' `apply_chat_template`
  raises "continue_final_message and add_generation_prompt are not compatible", which vLLM
  re-raises as VLLMValidationError (vllm/renderers/hf.py `safe_apply_chat_template`).

What it does not model: the engine itself (memory, CUDA, weights) and the text generated. It
answers every conversation with made-up completions (`reply`).
"""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

NAMES_FILE = Path(__file__).parent / "fixtures" / "vllm-0.30.0-names.txt"
ALLOWED_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_names() -> dict[str, frozenset[str]]:
    """Section -> names, from fixtures/vllm-0.30.0-names.txt."""
    out: dict[str, set[str]] = {}
    section = None
    for line in NAMES_FILE.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out[section] = set()
        else:
            out[section].add(line)
    return {k: frozenset(v) for k, v in out.items()}


NAMES = vllm_names()
LLM_KEYWORDS = NAMES["LLM.__init__"] | NAMES["EngineArgs"]
SAMPLING_FIELDS = NAMES["SamplingParams"]


class VLLMValidationError(Exception):
    """vllm/exceptions.py: VLLMValidationError(VLLMClientError(VLLMError(Exception)))."""


def default_reply(index: int, conversation: list, k: int) -> tuple[str, str]:
    """(text, finish_reason) of sample k of conversation `index`."""
    return f"answer {k} \\boxed{{5}}", "stop" if k % 2 == 0 else "length"


class FakeVLLM:
    """The fake `vllm` module (`.module`, with `vllm.lora.request`) and a record of every call."""

    def __init__(self, reply=default_reply, hub_template: str | None = "{{ messages }}"):
        self.llm_calls: list = []
        self.chat_calls: list = []
        self.lora_requests: list = []
        self.sampling_params: list = []
        fake = self

        class SamplingParams:
            def __init__(self, **kw):
                unknown = sorted(set(kw) - SAMPLING_FIELDS)
                if unknown:
                    raise TypeError(f"Unexpected keyword argument '{unknown[0]}'")
                self.n = kw.get("n", 1)
                self.temperature = kw.get("temperature", 1.0)
                self.top_p = kw.get("top_p", 1.0)
                self.top_k = kw.get("top_k", 0)
                self.max_tokens = kw.get("max_tokens", 16)
                self.seed = kw.get("seed")
                self.kwargs = kw
                if 0 < self.temperature < 1e-2:  # __post_init__: "We have maxed it out to 0.01"
                    self.temperature = 1e-2
                if not isinstance(self.n, int):
                    raise VLLMValidationError(f"n must be an int, but is of type {type(self.n)}")
                if self.n < 1:
                    raise VLLMValidationError(f"n must be at least 1, got {self.n}.")
                if not math.isfinite(self.temperature):
                    raise VLLMValidationError(f"temperature must be a finite number, got {self.temperature}.")
                if self.temperature < 0.0:
                    raise VLLMValidationError(f"temperature must be non-negative, got {self.temperature}.")
                if self.temperature > 2.0:
                    raise VLLMValidationError(f"temperature must be in [0, 2], got {self.temperature}.")
                if not 0.0 < self.top_p <= 1.0:
                    raise VLLMValidationError(f"top_p must be in (0, 1], got {self.top_p}.")
                if self.top_k < -1 or not isinstance(self.top_k, int):
                    raise VLLMValidationError(f"top_k must be 0 (disable), or at least 1, got {self.top_k}.")
                if self.max_tokens is not None and self.max_tokens < 1:
                    raise VLLMValidationError(f"max_tokens must be at least 1, got {self.max_tokens}.")
                if self.temperature < 1e-5 and self.n > 1:  # _verify_greedy_sampling
                    raise VLLMValidationError(f"n must be 1 when using greedy sampling, got {self.n}.")
                fake.sampling_params.append(self)

        class LoRARequest:
            def __init__(self, lora_name, lora_int_id, lora_path="", **kw):
                if lora_int_id < 1:
                    raise ValueError(f"id must be > 0, got {lora_int_id}")
                assert lora_path, "lora_path cannot be empty"
                self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path
                fake.lora_requests.append(self)

        class Completion:
            def __init__(self, index, text, finish):
                self.index, self.text, self.finish_reason = index, text, finish
                self.token_ids = list(range(len(text.split()) + 1))

        class Output:
            def __init__(self, outputs):
                self.outputs = outputs

        class Tokenizer:
            def __init__(self, template):
                self.chat_template = template

        class LLM:
            def __init__(self, model, **kw):
                unknown = sorted(set(kw) - LLM_KEYWORDS)
                if unknown:
                    raise TypeError(f"EngineArgs.__init__() got an unexpected keyword argument '{unknown[0]}'")
                if kw.get("enable_lora") and kw.get("max_lora_rank", 16) not in ALLOWED_RANKS:
                    raise ValueError(f"1 validation error for LoRAConfig\nmax_lora_rank\n  Input should be 1, 8, 16, "
                                     f"32, 64, 128, 256, 320 or 512 [input_value={kw['max_lora_rank']}]")
                fake.llm_calls.append((model, kw))
                self.kw = kw
                self.template = _model_template(model, hub_template)

            def get_tokenizer(self):
                return Tokenizer(self.template)

            def chat(self, messages, sampling_params=None, use_tqdm=True, lora_request=None, chat_template=None,
                     chat_template_content_format="auto", add_generation_prompt=True, continue_final_message=False,
                     tools=None, chat_template_kwargs=None, tokenization_kwargs=None, mm_processor_kwargs=None):
                if sampling_params is None:  # vLLM would use the model's generation_config and 16 tokens
                    raise AssertionError("xling always passes SamplingParams explicitly")
                params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(messages)
                if len(params) != len(messages):
                    raise ValueError("The lengths of prompts and sampling_params must be the same.")
                if add_generation_prompt and continue_final_message:
                    # transformers' apply_chat_template raises ValueError; vllm/renderers/hf.py
                    # `safe_apply_chat_template` re-raises it: `raise VLLMValidationError(_template_error_reason(e))`
                    raise VLLMValidationError("continue_final_message and add_generation_prompt are not compatible. Use "
                                     "continue_final_message when you want the model to continue the final message, "
                                     "and add_generation_prompt when you want to add a header that will prompt it to "
                                     "start a new assistant message instead.")
                if lora_request is not None and not self.kw.get("enable_lora"):
                    # vllm/v1/engine/input_processor.py `_validate_lora`:
                    #     raise VLLMValidationError(f"Got lora_request {lora_request} but LoRA is not enabled!")
                    raise VLLMValidationError(f"Got lora_request {lora_request} but LoRA is not enabled!")
                template = chat_template if chat_template is not None else self.template
                if not template:
                    raise ValueError("As of transformers v4.44, default chat template is no longer allowed, so you "
                                     "must provide a chat template if the tokenizer does not define one.")
                fake.chat_calls.append(dict(messages=messages, params=params, lora_request=lora_request,
                                            chat_template=chat_template, add_generation_prompt=add_generation_prompt,
                                            continue_final_message=continue_final_message, use_tqdm=use_tqdm))
                outs = []
                for i, (conv, p) in enumerate(zip(messages, params)):
                    done = [(k, *reply(i, conv, k)) for k in range(p.n)]
                    outs.append(Output([Completion(k, text, finish) for k, text, finish in reversed(done)]))
                return outs

        self.module = types.ModuleType("vllm")
        self.module.LLM, self.module.SamplingParams = LLM, SamplingParams
        self.lora = types.ModuleType("vllm.lora")
        self.request = types.ModuleType("vllm.lora.request")
        self.request.LoRARequest = LoRARequest
        self.lora.request = self.request
        self.module.lora = self.lora


def _model_template(model: str, hub_template: str | None) -> str | None:
    """The chat template the engine's tokenizer has: a local folder's own, else (a hub id) `hub_template`."""
    path = Path(model)
    if path.is_dir():
        import json

        config = path / "tokenizer_config.json"
        template = json.loads(config.read_text()).get("chat_template") if config.is_file() else None
        jinja = path / "chat_template.jinja"
        return template or (jinja.read_text() if jinja.is_file() else None)
    return hub_template


def install(monkeypatch, cuda: bool = True, **options) -> FakeVLLM:
    """Put the fake vllm in sys.modules and (by default) pretend a CUDA GPU is visible."""
    import xling.generate.core as core

    fake = FakeVLLM(**options)
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    monkeypatch.setitem(sys.modules, "vllm.lora", fake.lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", fake.request)
    monkeypatch.setattr(core, "cuda_available", lambda: cuda)
    monkeypatch.setattr(core, "vllm_build", lambda: "vllm")  # the CUDA build, whatever is installed here
    return fake
