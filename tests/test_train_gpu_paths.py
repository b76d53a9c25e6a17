"""The CUDA-only code paths, against fakes: Unsloth's FastLanguageModel and trainers, TRL's vLLM modes.

tests/fake_unsloth.py stands in for Unsloth 2026.10.7 on a pretended GPU of a chosen compute
capability (the names FastLanguageModel accepts, the dtype it loads in, the precision and vLLM
rewriting its patched trainers do; its docstring quotes the source lines), then hands back a real
tiny model, so the rest of the path runs with TRL on CPU. Where the real TRL 1.14.2 is what fails
(VESPO's importance-sampling mode, device_map under FSDP), the tests run the real TRL code.
"""

from __future__ import annotations

import json
import sys
import types

import pytest

from xling.common import versions
from xling.common.config import ConfigError, build
from xling.common.errors import XlingError
from xling.tasks import train_grpo, train_sft
from xling.train import backends, grpo, sft
from helpers import with_overrides
import fake_unsloth
from fake_unsloth import FakeFastLanguageModel

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:'pin_memory' argument")]


UNSLOTH_REQUIRES = ["trl!=0.19.0,<=1.15.0,>=0.18.2", "transformers<=5.17.0,>=4.52.4", "torch<2.15.0,>=2.4.0"]


def pretend_gpu_host(monkeypatch, capability=(8, 0)) -> dict:
    """Pretend: one CUDA GPU of this compute capability and the GPU lock set (unsloth, vllm); unsloth is the fake."""
    fake_unsloth.install(monkeypatch, capability)
    pins = {"unsloth": "2026.10.7", "unsloth-zoo": "2026.10.7", "vllm": "0.30.0"}
    real_installed, real_requires = versions.installed_version, versions.declared_requires
    monkeypatch.setattr(versions, "installed_version", lambda n: pins.get(versions.canonical(n)) or real_installed(n))
    monkeypatch.setattr(versions, "declared_requires",
                        lambda n: UNSLOTH_REQUIRES if versions.canonical(n) == "unsloth" else real_requires(n))
    return pins


@pytest.fixture
def gpu_host(monkeypatch):
    """An Ampere-class GPU host (compute capability 8.0: native bf16)."""
    return pretend_gpu_host(monkeypatch, (8, 0))


def cfg(model, **over):
    data = {
        "task": "train-grpo", "seed": 7, "model": {"name": str(model)},
        "data": {"source": "synth", "n": 2, "langs": ["en", "zh"]},
        "train": {"backend": "unsloth", "learning_rate": 1e-2, "max_steps": 1, "questions_per_step": 2,
                  "batch_size": 4, "gradient_checkpointing": False, "save_steps": 10, "precision": "auto"},
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


def test_unsloth_backend_passes_every_setting_and_trains(gpu_host, tiny_model, tmp_path, monkeypatch):
    import torch

    fake_unsloth.cpu_configs(monkeypatch)
    rec = record_args()
    metrics = grpo.run(cfg(tiny_model), tmp_path / "run", extra_callbacks=[rec])
    assert metrics["backend"] == "unsloth" and metrics["steps"] == 1 and not metrics["use_vllm"]
    (name1, loaded), (name2, lora) = FakeFastLanguageModel.calls
    assert (name1, name2) == ("from_pretrained", "get_peft_model")
    assert loaded == {"model_name": str(tiny_model), "max_seq_length": 520, "dtype": torch.bfloat16,
                      "load_in_4bit": False, "load_in_8bit": False, "full_finetuning": False, "fast_inference": False,
                      "max_lora_rank": 8, "random_state": 7, "use_gradient_checkpointing": False,
                      "disable_log_stats": True, "loaded_dtype": torch.bfloat16}
    assert lora["r"] == 8 and lora["lora_alpha"] == 16 and lora["target_modules"] == ["q_proj", "v_proj"]
    assert lora["random_state"] == 7 and lora["lora_dropout"] == 0.0
    # Unsloth's GRPOConfig changes TRL's defaults; xling passes each explicitly
    a = rec.args
    assert (a.learning_rate, a.optim, a.seed, a.weight_decay, a.lr_scheduler_type) == (1e-2, "adamw_torch", 7, 0.0,
                                                                                      "constant")
    assert (a.per_device_train_batch_size, a.gradient_accumulation_steps, a.num_generations) == (4, 2, 4)
    assert (a.loss_type, a.beta, a.epsilon, a.epsilon_high, a.mask_truncated_completions) == ("dapo", 0.001, 0.2,
                                                                                            0.2, False)
    assert (a.temperature, a.top_p, a.scale_rewards, a.reward_weights) == (1.0, 1.0, "group", [0.8, 0.1, 0.1])
    assert a.vllm_importance_sampling_correction is True and a.use_vllm is False and a.report_to == []
    assert a.bf16 and not a.fp16 and a.importance_sampling_level == "token"
    assert (tmp_path / "run" / "final" / "adapter_config.json").is_file()
    env = json.loads((tmp_path / "run" / "train_env.json").read_text())
    assert (env["plan"]["precision"], env["plan"]["dtype"], env["plan"]["gpu_capability"]) == ("bf16", "bfloat16",
                                                                                               ["8.0"])
    ran = env["ran"]  # what the trainer held after Unsloth's rewriting
    assert (ran["model_dtype"], ran["bf16"], ran["fp16"], ran["beta"]) == ("bfloat16", True, False, 0.001)
    assert ran["reference"].startswith("the model with its LoRA adapter disabled")  # KL without a second copy


def test_unsloth_with_vllm_rollouts(gpu_host, tiny_model, tmp_path, monkeypatch):
    """xling's vLLM settings for Unsloth are the ones Unsloth's trainer enforces from its engine."""
    import trl

    seen: dict = {}
    monkeypatch.setattr(trl, "GRPOTrainer", fake_unsloth.patched(recording_trainer(seen), grpo=True))
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
    args, passed = seen["args"], seen["config"]  # after Unsloth's rewriting / as xling passed them
    assert args.use_vllm is True and args.vllm_mode == "colocate" and args.bf16 is True
    assert args.vllm_enable_sleep_mode is True  # Unsloth's engine runs in standby: it turns TRL's sleep mode on
    assert (passed["use_vllm"], passed["vllm_mode"], passed["vllm_enable_sleep_mode"], passed["bf16"]) == (
        True, "colocate", True, True)  # ... and xling said so up front
    assert passed["top_k"] == 0 and args.top_k == -1  # the one value Unsloth rewrites (both mean: no top-k)
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


def test_unsloth_sft_fp16_on_a_bf16_gpu(gpu_host, tiny_model, tmp_path, monkeypatch):
    """fp16 on an Ampere GPU works with Unsloth when the model is loaded in float16 (xling passes the dtype)."""
    import torch

    fake_unsloth.cpu_configs(monkeypatch)
    c = build(train_sft.Config, {"task": "train-sft", "seed": 1, "model": {"name": str(tiny_model)},
                                 "data": {"source": "synth", "n": 2, "langs": ["en"]},
                                 "train": {"backend": "unsloth", "max_steps": 1, "questions_per_step": 2,
                                           "batch_size": 2, "precision": "fp16", "gradient_checkpointing": False},
                                 "lora": {"r": 8, "alpha": 8, "targets": ["q_proj"]}})
    metrics = sft.run(c, tmp_path / "sft")
    loaded = FakeFastLanguageModel.calls[0][1]
    assert loaded["fast_inference"] is False and loaded["max_seq_length"] == 5120
    assert loaded["dtype"] is torch.float16 and loaded["loaded_dtype"] is torch.float16
    assert metrics["backend"] == "unsloth" and metrics["steps"] == 1
    ran = json.loads((tmp_path / "sft" / "train_env.json").read_text())["ran"]
    assert (ran["model_dtype"], ran["fp16"], ran["bf16"]) == ("float16", True, False)


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


# ----------------------------------------------------------------------- precision on pre-Ampere GPUs


@pytest.mark.parametrize("capability", [(7, 5), (7, 0)])  # T4, V100
def test_pre_ampere_auto_precision_is_fp16_and_unsloth_accepts_it(monkeypatch, tiny_model, tmp_path, capability):
    import torch
    import trl

    pretend_gpu_host(monkeypatch, capability)
    seen: dict = {}
    monkeypatch.setattr(trl, "GRPOTrainer", fake_unsloth.patched(recording_trainer(seen), grpo=True))
    monkeypatch.setattr(trl, "GRPOConfig", recording_config(seen))
    plan = backends.resolve(cfg(tiny_model), "grpo", 4)
    assert (plan.precision, plan.dtype, plan.gpu_capability) == ("fp16", "float16", [f"{capability[0]}.{capability[1]}"])
    with pytest.raises(Stop):  # Unsloth's trainer accepted the float16 model with fp16 training
        grpo.run(cfg(tiny_model), tmp_path / "run")
    assert FakeFastLanguageModel.calls[0][1]["dtype"] is torch.float16
    assert seen["args"].fp16 and not seen["args"].bf16


def test_the_bf16_crash_on_a_t4_and_its_refusal(monkeypatch, tiny_model):
    """What used to happen on a T4: torch says bf16 is supported (emulation), xling trained in bf16 and let
    Unsloth pick the dtype; Unsloth loads float16 there and its trainer refuses. Now refused up front."""
    import torch
    import trl
    from trl import GRPOConfig

    pretend_gpu_host(monkeypatch, (7, 5))
    model, _ = FakeFastLanguageModel.from_pretrained(
        model_name=str(tiny_model), max_seq_length=64, dtype=None, load_in_4bit=False, fast_inference=False,
        max_lora_rank=8, random_state=0, use_gradient_checkpointing=False)
    assert model.config.dtype == torch.float16  # SUPPORTS_BFLOAT16 is False below compute capability 8.0
    args = GRPOConfig(output_dir="x", bf16=True, use_cpu=True, num_generations=2, per_device_train_batch_size=2)
    with pytest.raises(TypeError, match="Model is in float16 precision but you want to use bfloat16 precision"):
        trl.GRPOTrainer(model=model, reward_funcs=[], args=args)
    with pytest.raises(XlingError, match=r"^train.precision=bf16: this GPU \(compute capability 7.5\) has no native "
                                         r"bf16.*use train.precision=fp16 or auto$"):
        backends.resolve(cfg(tiny_model, **{"train.precision": "bf16"}), "grpo", 4)
    peft = backends.resolve(cfg(tiny_model, **{"train.precision": "bf16", "train.backend": "peft"}), "grpo", 4)
    assert peft.precision == "bf16" and any("bf16 is emulated" in n for n in peft.notes)


@pytest.mark.parametrize("over,message", [
    ({"train.precision": "fp32"}, r"^train.precision=fp32 with train.backend=unsloth: .*train.backend=peft to train "
                                  r"in fp32$"),
    ({"train.precision": "fp16", "model.dtype": "bfloat16"}, r"^model.dtype=bfloat16 with train.precision=fp16: "
                                                             r".*model.dtype=float16$"),
    ({"model.dtype": "float32"}, r"^model.dtype=float32 with train.precision=bf16: "),
])
def test_unsloth_precision_settings_that_would_crash_or_change_are_refused(gpu_host, tiny_model, over, message):
    with pytest.raises(XlingError, match=message):
        backends.resolve(cfg(tiny_model, **over), "grpo", 4)


def test_unsloth_rewrites_fp32_into_mixed_precision(gpu_host, tiny_model):
    """Why fp32 is refused with Unsloth: its trainer switches an fp32 LoRA run to bf16 autocast on an Ampere GPU."""
    import torch
    from trl import GRPOConfig

    model, _ = FakeFastLanguageModel.from_pretrained(
        model_name=str(tiny_model), max_seq_length=64, dtype=torch.float32, load_in_4bit=False, fast_inference=False,
        max_lora_rank=8, random_state=0, use_gradient_checkpointing=False)
    args = GRPOConfig(output_dir="x", use_cpu=True, num_generations=2, per_device_train_batch_size=2)
    fake_unsloth.mixed_precision(model, args)
    assert args.bf16 and not args.fp16


def test_unsloth_is_imported_before_the_gpu_is_queried(gpu_host, tiny_model, monkeypatch):
    """Unsloth sets CUDA allocator variables at import: resolve imports it before asking for the capability."""
    order: list = []
    real_import, real_caps = backends.import_unsloth, versions.gpu_capabilities
    monkeypatch.setattr(backends, "import_unsloth", lambda *a, **k: (order.append("import unsloth"), real_import(*a, **k))[1])
    monkeypatch.setattr(versions, "gpu_capabilities", lambda: (order.append("capability"), real_caps())[1])
    backends.resolve(cfg(tiny_model), "grpo", 4)
    assert order == ["import unsloth", "capability"]
    order.clear()
    backends.resolve(cfg(tiny_model, **{"train.backend": "peft"}), "grpo", 4)
    assert order == ["capability"]


# ----------------------------------------------------------------------- vLLM sleep mode and standby


@pytest.mark.parametrize("over,message", [
    ({"vllm.sleep_mode": True}, r"^vllm.sleep_mode=true is TRL's colocate sleep mode, which train.backend=unsloth "
                                r"does not use .*use vllm.standby=true with Unsloth$"),
    ({"vllm.standby": True, "train.backend": "peft"}, r"^vllm.standby=true is Unsloth's standby mode, which "
                                                      r"train.backend=peft does not use"),
    ({"vllm.standby": True, "vllm.sleep_mode": True}, r"^vllm.sleep_mode=true and vllm.standby=true both set"),
])
def test_sleep_mode_and_standby_are_not_crossed(gpu_host, tiny_model, over, message):
    with pytest.raises(XlingError, match=message):
        backends.resolve(cfg(tiny_model, **{"vllm.enabled": True, **over}), "grpo", 4)


# ----------------------------------------------------------------------- loss types against the real TRL


class ReachedVLLM(Exception):
    pass


def real_trainer_until_vllm(c, tmp_path, monkeypatch, **config_over):
    """The real TRL 1.14.2 GRPOTrainer built from xling's GRPOConfig for a vLLM plan, stopped where it would
    start vLLM (which needs a GPU): every check TRL makes before that runs for real."""
    import trl.trainer.grpo_trainer as gt
    from trl import GRPOConfig, GRPOTrainer
    from transformers import AutoTokenizer

    def stop(*args, **kwargs):
        raise ReachedVLLM

    monkeypatch.setattr(gt, "VLLMGeneration", stop)
    plan = backends.Plan("grpo", "peft", True, True, "fp32", "float32", train_grpo.batch_plan(c.train, 4), 8, 1,
                         False)
    args = grpo.grpo_args(c, plan, tmp_path / "ck", tmp_path, [1.0])
    args.update(use_cpu=True, **config_over)
    import datasets

    data = datasets.Dataset.from_list([{"prompt": "2+2=", "answer": "4"}] * 4)
    return GRPOTrainer(model=c.model.name, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
                       args=GRPOConfig(**args), train_dataset=data,
                       processing_class=AutoTokenizer.from_pretrained(c.model.name),
                       peft_config=backends.peft_lora_config(c))


def test_vespo_with_vllm_gets_the_importance_sampling_mode_trl_requires(tiny_model, tmp_path, monkeypatch):
    c = cfg(tiny_model, **{"train.backend": "peft", "grpo.loss_type": "vespo"})
    with pytest.raises(ValueError, match="VESPO loss requires `vllm_importance_sampling_mode` to be either "
                                         "'token_truncate' or 'token_mask'. Got: sequence_mask"):
        real_trainer_until_vllm(c, tmp_path, monkeypatch, vllm_importance_sampling_mode="sequence_mask")  # TRL's default
    with pytest.raises(ReachedVLLM):  # xling's setting passes TRL's check
        real_trainer_until_vllm(c, tmp_path, monkeypatch)
    plan = backends.Plan("grpo", "peft", True, True, "bf16", "bfloat16", train_grpo.batch_plan(c.train, 4), 8, 1, False)
    args = grpo.grpo_args(c, plan, tmp_path / "ck", tmp_path, [1.0])
    assert (args["vllm_importance_sampling_mode"], args["importance_sampling_level"]) == ("token_truncate", "token")
    with pytest.raises(ConfigError, match=r"^recipe key 'grpo.importance_sampling_mode': loss_type=vespo .*"
                                          r"use token_truncate or token_mask"):
        cfg(tiny_model, **{"grpo.loss_type": "vespo", "grpo.importance_sampling_mode": "sequence_truncate"})


def test_luspo_is_sequence_level(tiny_model, tmp_path, monkeypatch, caplog):
    import logging

    c = cfg(tiny_model, **{"train.backend": "peft", "grpo.loss_type": "luspo"})
    with caplog.at_level(logging.WARNING), pytest.raises(ReachedVLLM):
        real_trainer_until_vllm(c, tmp_path, monkeypatch)
    assert "`importance_sampling_level` should be set to `'sequence'`" not in caplog.text
    with caplog.at_level(logging.WARNING), pytest.raises(ReachedVLLM):
        real_trainer_until_vllm(c, tmp_path, monkeypatch, importance_sampling_level="token")
    assert "`importance_sampling_level` should be set to `'sequence'`" in caplog.text  # TRL's warning, for contrast
    default = cfg(tiny_model, **{"train.backend": "peft"})
    plan = backends.Plan("grpo", "peft", True, True, "bf16", "bfloat16", train_grpo.batch_plan(c.train, 4), 8, 1, False)
    assert grpo.grpo_args(c, plan, tmp_path, tmp_path, [1.0])["importance_sampling_level"] == "sequence"
    assert grpo.grpo_args(default, plan, tmp_path, tmp_path, [1.0])["vllm_importance_sampling_mode"] == "sequence_mask"


# ----------------------------------------------------------------------- several processes


def test_several_processes_load_without_device_map_auto(gpu_host, tiny_model, monkeypatch):
    """Under FSDP TRL 1.14.2 leaves device_map unset and create_model_from_path fills in "auto" on a GPU;
    xling's model_init_kwargs set device_map=None for several processes."""
    from trl.trainer import utils as trl_utils

    seen: list = []

    class Spy:
        @staticmethod
        def from_pretrained(model_id, **kwargs):
            seen.append(kwargs.get("device_map", "<unset>"))
            return None

    monkeypatch.setattr(trl_utils, "PartialState", lambda: types.SimpleNamespace(device=types.SimpleNamespace(type="cuda")))
    monkeypatch.setenv("WORLD_SIZE", "2")
    c = cfg(tiny_model, **{"train.backend": "full", "train.batch_size": 2})
    plan = backends.resolve(c, "grpo", 4)
    kwargs = backends._init_kwargs(c, plan)
    assert plan.processes == 2 and kwargs["device_map"] is None
    trl_utils.create_model_from_path(str(tiny_model), architecture=Spy, **kwargs)
    monkeypatch.setenv("WORLD_SIZE", "1")
    one = backends._init_kwargs(c, backends.resolve(c, "grpo", 4))
    trl_utils.create_model_from_path(str(tiny_model), architecture=Spy, **one)
    assert "device_map" not in one and seen == [None, "auto"]  # one process: TRL's "auto" is right
