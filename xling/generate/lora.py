"""LoRA adapters: read `adapter_config.json` and check, before any model is loaded, that vLLM can serve it.

vLLM 0.30 accepts `max_lora_rank` only from {1, 8, 16, 32, 64, 128, 256, 320, 512} (another value
fails when the engine is built), and an adapter whose rank is above the engine's `max_lora_rank`
fails only at the first request that uses it (`LoRA rank r is greater than max_lora_rank m.`),
that is, after the model has loaded. It also refuses `modules_to_save`, DoRA and adapter biases.
xling reads the adapter first, picks the smallest allowed `max_lora_rank` that fits it (or checks
the one given) and says what is wrong before generating anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from xling.common.errors import XlingError
from xling.common.io import read_text

ALLOWED_LORA_RANKS: tuple[int, ...] = (1, 8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class AdapterInfo:
    path: str
    rank: int  # the largest rank of any module (r, and rank_pattern's values)
    alpha: float | None
    base_model: str | None  # base_model_name_or_path as saved
    target_modules: list[str] = field(default_factory=list)
    problems: tuple[str, ...] = ()  # what vLLM would refuse (modules_to_save, DoRA, bias)


def read_adapter(path: str | Path) -> AdapterInfo:
    """The adapter's rank and what vLLM would refuse; an error if it is not a PEFT LoRA folder."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise XlingError(f"adapter {path} does not exist; give adapter=DIR, the folder with adapter_config.json")
    config_file = folder / "adapter_config.json" if folder.is_dir() else folder
    if not config_file.is_file() or config_file.name != "adapter_config.json":
        raise XlingError(f"adapter {path} has no adapter_config.json; give the folder a LoRA training run saved "
                         "(it holds adapter_config.json and adapter_model.safetensors)")
    try:
        cfg = json.loads(read_text(config_file))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise XlingError(f"{config_file} is not valid JSON ({e}); the adapter is damaged") from None
    peft_type = str(cfg.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise XlingError(f"adapter {path} is a {peft_type} adapter; only LoRA adapters can be served")
    ranks = [cfg.get("r")] + list((cfg.get("rank_pattern") or {}).values())
    ranks = [r for r in ranks if isinstance(r, int) and not isinstance(r, bool)]
    if not ranks or min(ranks) < 1:
        raise XlingError(f"{config_file} has no valid LoRA rank 'r'; the adapter is damaged")
    problems = []
    if cfg.get("modules_to_save"):
        problems.append(f"modules_to_save={cfg['modules_to_save']} (vLLM only supports modules_to_save being None)")
    if cfg.get("use_dora"):
        problems.append("use_dora=true (vLLM does not yet support DoRA)")
    if cfg.get("bias", "none") not in ("none", None):
        problems.append(f"bias={cfg['bias']!r} (vLLM does not support adapter biases)")
    targets = cfg.get("target_modules") or []
    return AdapterInfo(str(folder), max(ranks), cfg.get("lora_alpha"), cfg.get("base_model_name_or_path"),
                       list(targets) if isinstance(targets, (list, tuple)) else [str(targets)], tuple(problems))


def lora_rank_for(rank: int, max_lora_rank: int | None = None, adapter: str = "the adapter") -> int:
    """The `max_lora_rank` to build vLLM with for an adapter of this rank.

    None picks the smallest allowed value that is at least `rank`. A given value must be allowed
    and at least `rank`.
    """
    if max_lora_rank is not None:
        if max_lora_rank not in ALLOWED_LORA_RANKS:
            fits = [v for v in ALLOWED_LORA_RANKS if v >= max(rank, max_lora_rank)]
            hint = f" (use {fits[0]})" if fits else ""
            raise XlingError(f"max_lora_rank={max_lora_rank} is not one vLLM accepts{hint}; allowed: "
                             f"{', '.join(map(str, ALLOWED_LORA_RANKS))}")
        if rank > max_lora_rank:
            fits = [v for v in ALLOWED_LORA_RANKS if v >= rank]
            hint = f"raise it to {fits[0]} or leave it unset" if fits else "retrain with r <= 512"
            raise XlingError(f"{adapter} has LoRA rank {rank}, above max_lora_rank={max_lora_rank}: vLLM would "
                             f"fail at the first request ('LoRA rank {rank} is greater than max_lora_rank "
                             f"{max_lora_rank}'); {hint}")
        return max_lora_rank
    for value in ALLOWED_LORA_RANKS:
        if value >= rank:
            return value
    raise XlingError(f"{adapter} has LoRA rank {rank}; vLLM serves ranks up to {ALLOWED_LORA_RANKS[-1]}: "
                     "retrain with a smaller r, or use the hf backend (slow), or merge the adapter "
                     "into the model and evaluate the merged model")


def check_adapter(path: str | Path, backend: str = "vllm", max_lora_rank: int | None = None) -> tuple[AdapterInfo, int | None]:
    """Read an adapter and check it for `backend`; returns it and the vLLM max_lora_rank (None for hf)."""
    info = read_adapter(path)
    if backend != "vllm":
        return info, None
    if info.problems:
        raise XlingError(f"vLLM cannot serve adapter {path}: {'; '.join(info.problems)}; retrain without it, "
                         "or use the hf backend")
    return info, lora_rank_for(info.rank, max_lora_rank, f"adapter {path}")
