"""The CUDA-only code paths, against fakes: Unsloth's FastLanguageModel and TRL's vLLM colocate/server mode.

A fake `unsloth` module in sys.modules checks every argument xling passes against the names the
pinned Unsloth 2026.10.7 accepts (unsloth/models/loader.py, llama.py) and the values vLLM 0.30
allows, then hands back a real tiny model, so the rest of the path runs with TRL on CPU.
"""

from __future__ import annotations

import sys
import types

import pytest

from xling import versions
from xling.config import build
from xling.errors import XlingError
from xling.tasks import train_grpo, train_sft
from xling.train import backends, grpo, sft
from xling.train.config import VLLM_LORA_RANKS
from helpers import with_overrides

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:'pin_memory' argument")]

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


class FakeFastLanguageModel:
    calls: list = []

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        assert not args, "xling passes keywords only"
        assert set(kwargs) <= FROM_PRETRAINED, set(kwargs) - FROM_PRETRAINED
        assert kwargs["max_lora_rank"] in VLLM_LORA_RANKS
        assert isinstance(kwargs["load_in_4bit"], bool) and isinstance(kwargs["fast_inference"], bool)
        assert kwargs["dtype"] is None or isinstance(kwargs["dtype"], torch.dtype)
        assert kwargs["use_gradient_checkpointing"] in ("unsloth", True, False)
        assert isinstance(kwargs["max_seq_length"], int) and isinstance(kwargs["random_state"], int)
        if kwargs["fast_inference"]:
            assert 0 < kwargs["gpu_memory_utilization"] <= 1
        else:
            assert "gpu_memory_utilization" not in kwargs
        cls.calls.append(("from_pretrained", kwargs))
        model = AutoModelForCausalLM.from_pretrained(kwargs["model_name"])
        return model, AutoTokenizer.from_pretrained(kwargs["model_name"])

    @classmethod
    def get_peft_model(cls, model, **kwargs):
        from peft import LoraConfig, get_peft_model

        assert set(kwargs) <= GET_PEFT_MODEL, set(kwargs) - GET_PEFT_MODEL
        loaded = cls.calls[-1][1]
        assert kwargs["r"] <= loaded["max_lora_rank"]
        assert kwargs["bias"] == "none" and kwargs["modules_to_save"] is None  # else fast_inference refuses
        cls.calls.append(("get_peft_model", kwargs))
        return get_peft_model(model, LoraConfig(r=kwargs["r"], lora_alpha=kwargs["lora_alpha"],
                                                lora_dropout=kwargs["lora_dropout"],
                                                target_modules=kwargs["target_modules"], task_type="CAUSAL_LM"))


UNSLOTH_REQUIRES = ["trl!=0.19.0,<=1.15.0,>=0.18.2", "transformers<=5.17.0,>=4.52.4", "torch<2.15.0,>=2.4.0"]


@pytest.fixture
def gpu_host(monkeypatch):
    """Pretend: CUDA is there and the GPU lock set is installed (unsloth, vllm); unsloth is the fake."""
    fake = types.ModuleType("unsloth")
    fake.FastLanguageModel = FakeFastLanguageModel
    FakeFastLanguageModel.calls = []
    monkeypatch.setitem(sys.modules, "unsloth", fake)
    monkeypatch.setattr(backends, "cuda_available", lambda: True)
    monkeypatch.setattr(backends, "bf16_supported", lambda: True)
    pins = {"unsloth": "2026.10.7", "unsloth-zoo": "2026.10.7", "vllm": "0.30.0"}
    real_installed, real_requires = versions.installed_version, versions.declared_requires
    monkeypatch.setattr(versions, "installed_version", lambda n: pins.get(versions.canonical(n)) or real_installed(n))
    monkeypatch.setattr(versions, "declared_requires",
                        lambda n: UNSLOTH_REQUIRES if versions.canonical(n) == "unsloth" else real_requires(n))
    monkeypatch.delenv("UNSLOTH_VLLM_STANDBY", raising=False)
    return pins


def cfg(model, **over):
    data = {
        "task": "train-grpo", "seed": 7, "model": {"name": str(model)},
        "data": {"source": "synth", "n": 2, "langs": ["en", "zh"]},
        "train": {"backend": "unsloth", "learning_rate": 1e-2, "max_steps": 1, "questions_per_step": 2,
                  "batch_size": 4, "gradient_checkpointing": False, "save_steps": 10, "precision": "fp32"},
        "lora": {"r": 8, "alpha": 16, "targets": ["q_proj", "v_proj"]},
        "vllm": {"enabled": False},
        "grpo": {"num_generations": 4, "max_completion_length": 8, "max_prompt_length": 512},
        "rewards": {"workers": 0},
    }
    return with_overrides(train_grpo.Config, data, over)


def record_args():
    from transformers import TrainerCallback

    class Record(TrainerCallback):
        args = None

        def on_train_begin(self, args, state, control, **kwargs):
            Record.args = args

    return Record()


class Stop(Exception):
    pass


def recording_config(seen: dict):
    """GRPOConfig as xling builds it; constructed for real (the names must be GRPOConfig's), on CPU here."""
    from trl import GRPOConfig

    def make(**kwargs):
        seen["config"] = kwargs
        return GRPOConfig(**{**kwargs, "use_cpu": True})

    return make


def recording_trainer(seen: dict):
    class RecordingTrainer:
        def __init__(self, model=None, reward_funcs=None, args=None, train_dataset=None, processing_class=None,
                     callbacks=None, **kwargs):
            seen.update(model=model, args=args, kwargs=kwargs, rewards=reward_funcs, dataset=train_dataset)
            raise Stop

    return RecordingTrainer


def test_unsloth_backend_passes_every_setting_and_trains(gpu_host, tiny_model, tmp_path):
    rec = record_args()
    metrics = grpo.run(cfg(tiny_model), tmp_path / "run", extra_callbacks=[rec])
    assert metrics["backend"] == "unsloth" and metrics["steps"] == 1 and not metrics["use_vllm"]
    (name1, loaded), (name2, lora) = FakeFastLanguageModel.calls
    assert (name1, name2) == ("from_pretrained", "get_peft_model")
    assert loaded == {"model_name": str(tiny_model), "max_seq_length": 520, "dtype": None, "load_in_4bit": False,
                      "load_in_8bit": False, "full_finetuning": False, "fast_inference": False, "max_lora_rank": 8,
                      "random_state": 7, "use_gradient_checkpointing": False, "disable_log_stats": True}
    assert lora["r"] == 8 and lora["lora_alpha"] == 16 and lora["target_modules"] == ["q_proj", "v_proj"]
    assert lora["random_state"] == 7 and lora["lora_dropout"] == 0.0
    # Unsloth's GRPOConfig changes TRL's defaults; xling passes each explicitly
    a = rec.args
    assert (a.learning_rate, a.optim, a.seed, a.weight_decay, a.lr_scheduler_type) == (1e-2, "adamw_torch", 7, 0.0,
                                                                                      "constant")
    assert (a.per_device_train_batch_size, a.gradient_accumulation_steps, a.num_generations) == (4, 2, 4)
    assert (a.loss_type, a.beta, a.epsilon, a.epsilon_high, a.mask_truncated_completions) == ("dapo", 0.0, 0.2, 0.2,
                                                                                            False)
    assert (a.temperature, a.top_p, a.scale_rewards, a.reward_weights) == (1.0, 1.0, "group", [0.8, 0.1, 0.1])
    assert a.vllm_importance_sampling_correction is True and a.use_vllm is False and a.report_to == []
    assert (tmp_path / "run" / "final" / "adapter_config.json").is_file()


def test_unsloth_with_vllm_rollouts(gpu_host, tiny_model, tmp_path, monkeypatch):
    import trl

    seen: dict = {}
    monkeypatch.setattr(trl, "GRPOTrainer", recording_trainer(seen))
    monkeypatch.setattr(trl, "GRPOConfig", recording_config(seen))
    with pytest.raises(Stop):
        grpo.run(cfg(tiny_model, **{"vllm.enabled": None, "vllm.gpu_memory_utilization": 0.6, "lora.r": 12,
                                    "lora.qlora": True, "vllm.standby": True, "train.gradient_checkpointing": True,
                                    "train.precision": "auto"}),
                 tmp_path / "run")
    loaded = FakeFastLanguageModel.calls[0][1]
    assert loaded["fast_inference"] is True and loaded["gpu_memory_utilization"] == 0.6
    assert loaded["max_lora_rank"] == 16  # r=12 rounded up to a rank vLLM accepts
    assert loaded["load_in_4bit"] is True and loaded["use_gradient_checkpointing"] == "unsloth"
    assert FakeFastLanguageModel.calls[1][1]["use_gradient_checkpointing"] == "unsloth"
    import os

    assert os.environ["UNSLOTH_VLLM_STANDBY"] == "1"
    args = seen["args"]
    assert args.use_vllm is True and args.vllm_mode == "colocate" and args.bf16 is True
    assert seen["config"]["use_cpu"] is False and "model_init_kwargs" not in seen["config"]
    assert "peft_config" not in seen["kwargs"]  # the model already carries Unsloth's LoRA
    assert isinstance(seen["dataset"][0]["prompt"], str)  # string prompts: template + (prefix), TRL adds nothing


def test_peft_backend_with_trl_vllm_colocate(gpu_host, tiny_model, tmp_path, monkeypatch):
    import trl
    from peft import LoraConfig

    seen: dict = {}
    monkeypatch.setattr(trl, "GRPOTrainer", recording_trainer(seen))
    monkeypatch.setattr(trl, "GRPOConfig", recording_config(seen))
    with pytest.raises(Stop):
        grpo.run(cfg(tiny_model, **{"train.backend": "peft", "train.precision": "auto", "vllm.enabled": None,
                                    "vllm.sleep_mode": True}), tmp_path / "run")
    args = seen["args"]
    assert args.use_vllm is True and args.vllm_mode == "colocate"
    assert args.vllm_gpu_memory_utilization == 0.5 and args.vllm_max_model_length == 512 + 8
    assert args.vllm_tensor_parallel_size == 1 and args.vllm_enable_sleep_mode is True
    assert args.vllm_importance_sampling_correction is True and args.ds3_gather_for_generation is True
    assert args.bf16 is True and seen["config"]["use_cpu"] is False
    assert args.model_init_kwargs == {"dtype": "bfloat16"}
    assert seen["model"] == str(tiny_model)  # TRL loads it with model_init_kwargs
    peft_config = seen["kwargs"]["peft_config"]
    assert isinstance(peft_config, LoraConfig) and peft_config.r == 8 and peft_config.lora_alpha == 16
    assert "quantization_config" not in seen["kwargs"]


def test_vllm_server_mode_fields(tmp_path):
    from trl import GRPOConfig

    c = cfg("tiny", **{"train.backend": "peft", "vllm.mode": "server", "vllm.server_host": "10.0.0.2",
                       "vllm.server_port": 8001})
    plan = backends.Plan("grpo", "peft", True, True, "bf16", "bfloat16", train_grpo.batch_plan(c.train, 4), 8, 2,
                         False)
    args = grpo.grpo_args(c, plan, tmp_path / "ck", tmp_path, [0.8, 0.1, 0.1])
    assert (args["vllm_mode"], args["vllm_server_host"], args["vllm_server_port"]) == ("server", "10.0.0.2", 8001)
    assert "vllm_gpu_memory_utilization" not in args
    args["use_cpu"], args["bf16"] = True, False  # constructible here; the names are GRPOConfig's
    config = GRPOConfig(**args)
    assert config.vllm_server_port == 8001 and config.use_vllm


def test_known_incompatible_versions_stop_the_gpu_path(gpu_host, tiny_model, tmp_path, monkeypatch):
    gpu_host["vllm"] = "0.31.0"
    with pytest.raises(XlingError) as e:
        grpo.run(cfg(tiny_model, **{"train.backend": "peft", "vllm.enabled": True}), tmp_path / "run")
    msg = str(e.value)
    assert msg.startswith("the installed packages do not fit train.backend=peft with vLLM: "
                          "trl 1.14.2 requires vllm<=0.30.0,>=0.20.0 (installed: vllm 0.31.0)")
    assert "pip install -r requirements-gpu.txt" in msg and "python run.py doctor" in msg


def test_unsloth_sft(gpu_host, tiny_model, tmp_path):
    c = build(train_sft.Config, {"task": "train-sft", "seed": 1, "model": {"name": str(tiny_model)},
                                 "data": {"source": "synth", "n": 2, "langs": ["en"]},
                                 "train": {"backend": "unsloth", "max_steps": 1, "questions_per_step": 2,
                                           "batch_size": 2, "precision": "fp32", "gradient_checkpointing": False},
                                 "lora": {"r": 8, "alpha": 8, "targets": ["q_proj"]}})
    metrics = sft.run(c, tmp_path / "sft")
    loaded = FakeFastLanguageModel.calls[0][1]
    assert loaded["fast_inference"] is False and loaded["max_seq_length"] == 5120
    assert metrics["backend"] == "unsloth" and metrics["steps"] == 1


def test_import_unsloth_warns_when_late_and_sets_standby(gpu_host, capsys, monkeypatch):
    import os

    monkeypatch.delitem(sys.modules, "unsloth")
    monkeypatch.setitem(sys.modules, "unsloth", types.ModuleType("unsloth"))  # "imported" by the backend
    mod = backends.import_unsloth(standby=True)
    assert mod is sys.modules["unsloth"] and os.environ["UNSLOTH_VLLM_STANDBY"] == "1"
    monkeypatch.delitem(sys.modules, "unsloth")
    with pytest.raises(XlingError, match=r"cannot import unsloth .*pip install -r requirements-gpu.txt"):
        backends.import_unsloth()
    assert "imported before unsloth in this process" in capsys.readouterr().out


def test_auto_backend_keeps_an_adapter_on_a_gpu_host(gpu_host, tiny_model):
    """Unsloth cannot continue a given adapter: auto picks peft then, and says why."""
    plan = backends.resolve(cfg(tiny_model, **{"train.backend": "auto", "model.adapter": "runs/sft/final"}), "grpo", 4)
    assert plan.backend == "peft"
    assert any("model.adapter is set" in note for note in plan.notes)
    assert backends.resolve(cfg(tiny_model, **{"train.backend": "auto"}), "grpo", 4).backend == "unsloth"


def test_gpu_rollouts_without_vllm_are_refused_when_large(gpu_host, tiny_model):
    big = cfg(tiny_model, **{"train.backend": "peft", "train.questions_per_step": 128, "train.batch_size": 16,
                             "grpo.num_generations": 16, "vllm.enabled": False})
    with pytest.raises(XlingError, match=r"without vLLM, GRPO generates a step's 2048 rollouts .* at most 16$"):
        backends.resolve(big, "grpo", 16)
    small = cfg(tiny_model, **{"train.backend": "peft", "vllm.enabled": False})
    assert backends.resolve(small, "grpo", 4).use_vllm is False


def test_full_parameter_training_keeps_fp32_master_weights(gpu_host, tiny_model):
    plan = backends.resolve(cfg(tiny_model, **{"train.backend": "full", "train.precision": "bf16"}), "grpo", 4)
    assert (plan.precision, plan.dtype) == ("bf16", "float32")
    plan = backends.resolve(cfg(tiny_model, **{"train.backend": "peft", "train.precision": "bf16"}), "grpo", 4)
    assert plan.dtype == "bfloat16"
