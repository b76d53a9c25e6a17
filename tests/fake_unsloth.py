"""A stand-in for the pinned Unsloth 2026.10.7 on a pretended GPU of a chosen compute capability.

What it mirrors (unsloth-2026.10.7 and unsloth_zoo-2026.10.7 wheels, read for these tests):

- `FastLanguageModel.from_pretrained` (unsloth/models/loader.py:1122-1160) and
  `FastLanguageModel.get_peft_model` (unsloth/models/llama.py:4238-4262): the parameter names.
  The real functions also take **kwargs for transformers; the fake refuses any other name, since
  xling passes only named parameters.
- The dtype Unsloth loads in (llama.py `FastLlamaModel.from_pretrained`, after loader.py's
  `assert dtype is None or dtype == torch.float16 or dtype == torch.bfloat16 or dtype ==
  torch.float32`): `if dtype is None: dtype = torch.float16 if not SUPPORTS_BFLOAT16 else
  torch.bfloat16` and `elif dtype == torch.bfloat16 and not SUPPORTS_BFLOAT16: ... "Device does
  not support bfloat16. Will change to float16."`, where `SUPPORTS_BFLOAT16 = bool(_cuda_caps)
  and all(major >= 8 for major, _ in _cuda_caps)` (models/_utils.py).
- The trainers Unsloth patches into TRL at import (models/rl.py, the mixed-precision block written
  into every trainer's __init__): "Unsloth: Model is in float16 precision but you want to use
  bfloat16 precision. Set fp16 to `True` and bf16 to `False`" (and the bfloat16/fp16 mirror) as
  TypeError; with neither bf16 nor fp16 asked for, mixed precision is switched on —
  `use_bf16_amp = (not float16) and _bf16_supported()`, where `_bf16_supported` is
  `torch.cuda.is_bf16_supported` (true on T4/V100 through emulation) — except for a float32 model
  the caller asked for on a GPU without bf16, which stays float32.
- GRPO with fast_inference (rl.py, the `vllm_setter` written into GRPOTrainer.__init__): a model
  with a `vllm_engine` sets `args.use_vllm = True`, `args.vllm_mode = 'colocate'`, `top_k` 0 ->
  -1, and `args.vllm_enable_sleep_mode = True` when the engine has sleep mode (standby).

What it does not model: CUDA, Unsloth's kernels and its vLLM engine (the model gets a stand-in
`vllm_engine` that only says whether sleep mode is on), 4-bit loading (weights stay as loaded),
and the rest of the trainer rewriting (Unsloth's own GRPOConfig defaults: xling passes every
value explicitly, see xling/train/grpo.py). The patched trainers run the real TRL trainers, so a
test that trains does so on CPU: `cpu_configs` builds GRPOConfig/SFTConfig with use_cpu=True.
"""

from __future__ import annotations

import os
import sys
import types
from types import SimpleNamespace

FROM_PRETRAINED = {  # FastLanguageModel.from_pretrained, unsloth 2026.10.7 loader.py:1122-1160
    "model_name", "max_seq_length", "dtype", "load_in_4bit", "load_in_8bit", "load_in_16bit", "full_finetuning",
    "token", "device_map", "device_map_planner_kwargs", "rope_scaling", "fix_tokenizer", "trust_remote_code",
    "use_gradient_checkpointing", "resize_model_vocab", "revision", "use_exact_model_name", "offload_embedding",
    "float32_mixed_precision", "fast_inference", "gpu_memory_utilization", "float8_kv_cache", "random_state",
    "max_lora_rank", "disable_log_stats", "qat_scheme", "load_in_fp8", "unsloth_tiled_mlp", "text_only",
}
GET_PEFT_MODEL = {  # FastLanguageModel.get_peft_model, llama.py:4238-4262
    "r", "target_modules", "lora_alpha", "lora_dropout", "bias", "layers_to_transform", "layers_pattern",
    "finetune_last_n_layers", "use_gradient_checkpointing", "random_state", "max_seq_length", "use_rslora",
    "modules_to_save", "init_lora_weights", "loftq_config", "temporary_location", "qat_scheme", "target_parameters",
    "ensure_weight_tying", "offload_layers", "checkpoint_skip_layers",
}
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vllm/config/lora.py MaxLoRARanks


def supports_bf16(capability: tuple[int, int]) -> bool:
    """models/_utils.py SUPPORTS_BFLOAT16 for one visible GPU."""
    return capability[0] >= 8


def loaded_dtype(dtype, capability: tuple[int, int]):
    """The dtype Unsloth loads the model in (loader.py's assert, then llama.py's resolution)."""
    import torch

    if isinstance(dtype, str) and dtype in ("float16", "bfloat16"):
        dtype = getattr(torch, dtype)
    assert dtype is None or dtype in (torch.float16, torch.bfloat16, torch.float32)
    if dtype is None:
        return torch.bfloat16 if supports_bf16(capability) else torch.float16
    if dtype == torch.bfloat16 and not supports_bf16(capability):
        return torch.float16  # "Device does not support bfloat16. Will change to float16."
    return dtype


def mixed_precision(model, args) -> None:
    """rl.py's mixed-precision block, as Unsloth writes it into every trainer's __init__."""
    import torch

    use_bf16, use_fp16 = bool(getattr(args, "bf16", False)), bool(getattr(args, "fp16", False))
    dtype = getattr(model.config, "dtype", None) or getattr(model.config, "torch_dtype", None)
    float16, bfloat16, float32 = dtype == torch.float16, dtype == torch.bfloat16, dtype == torch.float32
    if float16 and use_bf16:
        raise TypeError("Unsloth: Model is in float16 precision but you want to use bfloat16 precision. "
                        "Set fp16 to `True` and bf16 to `False`")
    if bfloat16 and use_fp16:
        raise TypeError("Unsloth: Model is in bfloat16 precision but you want to use float16 precision. "
                        "Set fp16 to `False` and bf16 to `True`")
    torch_says_bf16 = True  # torch.cuda.is_bf16_supported(): true on any CUDA GPU through emulation
    user_float32 = bool(getattr(model, "_unsloth_user_float32", False))
    if not use_bf16 and not use_fp16:
        if float32 and user_float32 and not supports_bf16(FakeFastLanguageModel.capability):
            return  # "training stays in float32"
        use_bf16_amp = (not float16) and torch_says_bf16
        args.fp16, args.bf16 = not use_bf16_amp, use_bf16_amp
        os.environ["ACCELERATE_MIXED_PRECISION"] = "bf16" if use_bf16_amp else "fp16"
    else:
        os.environ["ACCELERATE_MIXED_PRECISION"] = "bf16" if use_bf16 else "fp16"


def vllm_setter(model, args) -> None:
    """rl.py's vllm_setter for GRPO: a fast_inference model's engine decides the vLLM settings."""
    if hasattr(model, "vllm_engine") and hasattr(args, "use_vllm"):
        args.use_vllm = True
        if getattr(args, "top_k", -1) is None or getattr(args, "top_k", -1) == 0:
            args.top_k = -1
        args.vllm_mode = "colocate"
        sleep = model.vllm_engine.llm_engine.vllm_config.model_config.enable_sleep_mode
        if sleep if sleep is not None else os.environ.get("UNSLOTH_VLLM_STANDBY", "0") != "0":
            args.vllm_enable_sleep_mode = True


class FakeFastLanguageModel:
    calls: list = []
    capability: tuple[int, int] = (8, 0)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        assert not args, "xling passes keywords only"
        unknown = set(kwargs) - FROM_PRETRAINED
        if unknown:
            raise TypeError(f"from_pretrained() got an unexpected keyword argument '{sorted(unknown)[0]}'")
        assert kwargs["max_lora_rank"] in VLLM_LORA_RANKS
        assert isinstance(kwargs["load_in_4bit"], bool) and isinstance(kwargs["fast_inference"], bool)
        assert kwargs["use_gradient_checkpointing"] in ("unsloth", True, False)
        assert isinstance(kwargs["max_seq_length"], int) and isinstance(kwargs["random_state"], int)
        if kwargs["fast_inference"]:
            assert 0 < kwargs["gpu_memory_utilization"] <= 1
        else:
            assert "gpu_memory_utilization" not in kwargs
        import torch

        dtype = loaded_dtype(kwargs.get("dtype"), cls.capability)
        cls.calls.append(("from_pretrained", {**kwargs, "loaded_dtype": dtype}))
        model = AutoModelForCausalLM.from_pretrained(kwargs["model_name"], dtype=dtype)
        model.config.dtype = dtype
        model._unsloth_user_float32 = kwargs.get("dtype") is torch.float32
        if kwargs["fast_inference"] and cls.capability[0] >= 7:  # "vLLM does not work on older GPUs"
            standby = os.environ.get("UNSLOTH_VLLM_STANDBY", "0") != "0"
            model.vllm_engine = SimpleNamespace(llm_engine=SimpleNamespace(vllm_config=SimpleNamespace(
                model_config=SimpleNamespace(enable_sleep_mode=standby))))
        return model, AutoTokenizer.from_pretrained(kwargs["model_name"])

    @classmethod
    def get_peft_model(cls, model, **kwargs):
        from peft import LoraConfig, get_peft_model

        unknown = set(kwargs) - GET_PEFT_MODEL
        if unknown:
            raise TypeError(f"get_peft_model() got an unexpected keyword argument '{sorted(unknown)[0]}'")
        loaded = cls.calls[-1][1]
        assert kwargs["r"] <= loaded["max_lora_rank"]
        assert kwargs["bias"] == "none" and kwargs["modules_to_save"] is None  # else fast_inference refuses
        cls.calls.append(("get_peft_model", kwargs))
        engine = getattr(model, "vllm_engine", None)
        peft_model = get_peft_model(model, LoraConfig(r=kwargs["r"], lora_alpha=kwargs["lora_alpha"],
                                                      lora_dropout=kwargs["lora_dropout"],
                                                      target_modules=kwargs["target_modules"], task_type="CAUSAL_LM"))
        if engine is not None:
            peft_model.vllm_engine = engine
        return peft_model


def patched(trainer_cls, grpo: bool):
    """TRL's trainer as Unsloth patches it: the precision (and, for GRPO, vLLM) rewriting, then TRL's own init."""

    class UnslothTrainer(trainer_cls):
        def __init__(self, *args, **kwargs):
            model, train_args = kwargs.get("model"), kwargs.get("args")
            if train_args is not None and model is not None and not isinstance(model, str):
                mixed_precision(model, train_args)
                if grpo:
                    vllm_setter(model, train_args)
            super().__init__(*args, **kwargs)

    UnslothTrainer.__name__ = f"Unsloth{trainer_cls.__name__}"
    return UnslothTrainer


def install(monkeypatch, capability: tuple[int, int] = (8, 0)):
    """A fake `unsloth` in sys.modules, TRL's trainers patched as Unsloth patches them, and xling told
    that one GPU of this compute capability is visible."""
    import trl

    from xling.common import versions
    from xling.train import backends

    fake = types.ModuleType("unsloth")
    fake.FastLanguageModel = FakeFastLanguageModel
    FakeFastLanguageModel.calls = []
    FakeFastLanguageModel.capability = capability
    monkeypatch.setitem(sys.modules, "unsloth", fake)
    monkeypatch.setattr(trl, "GRPOTrainer", patched(trl.GRPOTrainer, grpo=True))
    monkeypatch.setattr(trl, "SFTTrainer", patched(trl.SFTTrainer, grpo=False))
    monkeypatch.setattr(backends, "cuda_available", lambda: True)
    monkeypatch.setattr(versions, "gpu_capabilities", lambda: [capability])
    monkeypatch.delenv("UNSLOTH_VLLM_STANDBY", raising=False)
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    return fake


def cpu_configs(monkeypatch) -> None:
    """GRPOConfig and SFTConfig built with use_cpu=True, so that a pretended GPU run trains on this CPU."""
    import trl

    real_grpo, real_sft = trl.GRPOConfig, trl.SFTConfig
    monkeypatch.setattr(trl, "GRPOConfig", lambda **kw: real_grpo(**{**kw, "use_cpu": True}))
    monkeypatch.setattr(trl, "SFTConfig", lambda **kw: real_sft(**{**kw, "use_cpu": True}))
