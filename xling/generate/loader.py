"""Opening a generation backend by name (hf or vllm), each imported only when asked for."""

from __future__ import annotations

import inspect

from xling.common.errors import XlingError
from xling.generate.core import Generator, resolve_backend


def load_generator(backend: str, model: str, *, adapter: str | None = None, **options) -> Generator:
    """A generator for `model` (a local folder or hub id), optionally with a LoRA adapter.

    Options (all keyword): `template_from` (borrow a chat template: an instruct model, 'chatml' or a
    Jinja string; base models need one), `dtype` ('auto', 'bfloat16', 'float16', 'float32'),
    `seed`; hf only: `device`, `batch_size` (conversations per generate call); vllm only:
    `max_lora_rank` (None: the adapter's rank rounded up to an allowed value),
    `gpu_memory_utilization`, `max_model_len`, `enforce_eager`, `tensor_parallel_size`,
    `max_num_seqs`, `enable_prefix_caching`, `use_tqdm`, `engine_kwargs` (more `LLM(...)` keywords).
    """
    name = resolve_backend(backend)
    if name == "hf":
        from xling.generate.hf import HFGenerator as cls
    else:
        from xling.generate.vllm_backend import VLLMGenerator as cls  # type: ignore[assignment]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "model", "adapter")]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise XlingError(f"the {name} generation backend has no option {', '.join(unknown)}; "
                         f"its options: {', '.join(accepted)}")
    return cls(model, adapter=adapter, **options)
