"""The models an evaluation compares: their specs, names, built-in models and the checks made before anything loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xling.common.errors import XlingError
from xling.data import hub
from xling.evaluation.settings import GenConfig


@dataclass
class ModelSpec:
    """A model to evaluate: its table label and what generates its completions."""

    name: str
    model: str
    adapter: str | None = None
    template_from: str | None = None
    role: str = "trained"  # trained, base (evaluate) or trained/initial (observational)
    train_langs: list[str] = field(default_factory=lambda: ["en"])
    notes: list[str] = field(default_factory=list)
    paradigm: str | None = None
    x: int | None = None  # training languages on the scaling curve (None: len(train_langs))
    gen: dict = field(default_factory=dict)  # this model's own sampling settings (temperature, top_p, max_tokens)

    @property
    def identity(self) -> tuple:
        return (self.model, self.adapter, self.template_from, tuple(sorted(self.gen.items())))


def spec_gen(cfg, spec: ModelSpec) -> GenConfig:
    """The recipe's generation settings with this model's own overrides (observational pairs) applied."""
    from dataclasses import replace

    return replace(cfg.gen, **spec.gen) if spec.gen else cfg.gen


_GENERIC = {"adapter", "adapters", "lora", "final", "model", "output", "best", "last"}


def default_name(model: str, adapter: str | None = None) -> str:
    """A short label: the adapter's folder (its run's name when the folder name is generic), else the model's."""
    path = Path(adapter or model)
    parts = [p for p in path.parts if p not in ("/", ".", "..")]
    if not parts:
        return str(model)
    leaf = parts[-1]
    if len(parts) > 1 and (leaf.lower() in _GENERIC or leaf.startswith("checkpoint")):
        return f"{parts[-2]}/{leaf}" if leaf.startswith("checkpoint") else parts[-2]
    return leaf


def _looks_local(model: str) -> bool:
    return model.startswith((".", "/", "~")) or Path(model).expanduser().exists() or model.count("/") != 1


TINY = {"tiny": True, "tiny-base": False}  # built-in tiny random models (chat template or not), for CPU demos


BUILT_IN = (*TINY, "toy")  # and the pretrained toy model of the classroom demo (xling.models.toy)


def materialize(model: str) -> str:
    """The folder to load for `model`: `tiny` / `tiny-base` (the tiny random Qwen2 model of `xling.models.tiny`)
    and `toy` (the pretrained toy model of `xling.models.toy`) are built once under the xling cache; a GGUF
    file, or a folder holding one, is converted once (`xling.models.gguf`); anything else is returned as is."""
    if model == "toy":
        from xling.models.toy import build_toy

        return str(build_toy())
    if model not in TINY:
        from xling.models import gguf

        return gguf.resolve(model)
    from xling.models.tiny import cached_tiny_model

    return str(cached_tiny_model(model))


def check_paths(spec: ModelSpec) -> None:
    """The cheap checks, before anything is loaded or downloaded: a model given as a local path and
    an adapter folder exist (and the adapter is a LoRA folder). Raises XlingError."""
    from xling.generate.lora import read_adapter

    if spec.model not in BUILT_IN and _looks_local(spec.model) and not Path(spec.model).expanduser().exists():
        raise XlingError(f"{spec.role} model '{spec.name}': {spec.model} does not exist; give a local model folder "
                         "or a hub id (org/name)")
    hub.check_model(spec.model if spec.model not in TINY else None, "model")
    hub.check_model(spec.template_from, "template_from")
    if spec.adapter:
        try:
            read_adapter(spec.adapter)
        except XlingError as e:
            raise XlingError(f"{spec.role} model '{spec.name}': {e}") from None


def check_model(spec: ModelSpec, backend: str, max_lora_rank: int | None) -> None:
    """Everything that can be checked without loading weights: the model and tokenizer are there,
    a chat template resolves, the adapter is a LoRA folder that vLLM can serve. Raises XlingError."""
    from xling.data.prompts import chat_template_for
    from xling.generate.hf import load_tokenizer
    from xling.generate.lora import check_adapter

    check_paths(spec)
    tok = load_tokenizer(spec.model)
    try:
        chat_template_for(tok, spec.template_from)
    except XlingError as e:
        raise XlingError(f"{spec.role} model '{spec.name}': {e}") from None
    if spec.adapter:
        try:
            info, rank = check_adapter(spec.adapter, backend, max_lora_rank)
        except XlingError as e:
            raise XlingError(f"{spec.role} model '{spec.name}': {e}") from None
        if rank is not None:
            spec.notes.append(f"adapter rank {info.rank} -> vLLM max_lora_rank {rank}")
        else:
            spec.notes.append(f"adapter rank {info.rank} (PEFT)")
        base = info.base_model
        if base and Path(base).name != Path(spec.model).name and base != spec.model:
            spec.notes.append(f"note: the adapter was trained on {base}, it is applied to {spec.model}")
