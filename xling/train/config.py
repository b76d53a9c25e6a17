"""Recipe sections of the training tasks, their defaults (the paper's: docs/protocol.md#training) and their checks.

Sections: `model`, `data` (the training-set builder's `xling.data.trainset.TrainData`), `train`,
`lora`, `vllm`, `grpo`, `rewards`, `sft`, `rft`. Every value is checked here, with a message that
names the key, before TRL (or Unsloth, which silently rewrites some values) sees it.

Batch arithmetic (GRPO): `train.batch_size` counts completions per device per micro-batch (TRL's
`per_device_train_batch_size`); one optimizer step holds `train.questions_per_step` questions ×
`grpo.num_generations` rollouts, reached with gradient accumulation
(`grad_accum = questions × G / (batch_size × processes)`), or set `train.grad_accum` directly.
For SFT and RFT, G is 1 and "questions" are training examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from xling.generate.sampling import Sampling, SamplingSection
from xling.grading.settings import ScoreSection
from xling.common.checks import OPTIMIZERS, SCHEDULERS, finite_problem, norm_problem, tokens_problem
from xling.common.config import Invalid, Recipe
from xling.planning.batches import batch_plan
from xling.planning.plan import PLAN_KEYS, PlanConfig
from xling.data.trainset import TrainData

BACKENDS = ("auto", "unsloth", "peft", "full")
# Keys a training run may change and still resume in the same folder (run.py lets them differ).
RESUMABLE_CHANGES = frozenset({"out", "description", "resume", "vllm",
                     "train.max_steps", "train.epochs", "train.save_steps", "train.save_total_limit",
                     "train.logging_steps", "train.report_to", "grpo.log_completions", "rewards.workers",
                     "rewards.timeout", "rft.generator", "rft.gpu_memory_utilization", "rft.chunk"}) | PLAN_KEYS

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
REPORT_TO = ("none", "tensorboard", "wandb")
# vLLM 0.30 accepts only these LoRA ranks (vllm/config/lora.py MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TINY = "tiny"  # model.name=tiny: build xling.models.tiny's random model into the run folder (CPU runs, tests)
TOY = "toy"  # model.name=toy: the pretrained toy model of the classroom demo (xling.models.toy, cached)


@dataclass(kw_only=True)
class ModelConfig:
    name: str = "Qwen/Qwen2.5-1.5B-Instruct"  # the model trained: hub id, local folder, GGUF file (or its folder), 'tiny' or 'toy'
    template_from: str | None = None  # base models: borrow this chat template (instruct model, 'chatml')
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # weights' dtype (auto: bf16 on GPU, fp32 on CPU)
    adapter: str | None = None  # start from this LoRA adapter (e.g. an SFT run's final/; peft backend)
    attn_implementation: str | None = None  # attention kernel, e.g. sdpa, flash_attention_2 (default: transformers' choice)

    def check(self) -> None:
        if not str(self.name).strip():
            raise Invalid("name", "give a model: a hub id, a local folder, a GGUF file, 'tiny' or 'toy'")


@dataclass(kw_only=True)
class TrainConfig:
    backend: Literal["auto", "unsloth", "peft", "full"] = "auto"  # how weights are trained: unsloth or peft (LoRA), full (every weight); auto: unsloth with CUDA, else peft
    learning_rate: float = 1e-6  # the optimizer's learning rate: the paper's (full-parameter); LoRA wants ~1e-5 to 5e-5
    epochs: float = 1.0  # passes over the training set (when max_steps is -1)
    max_steps: int = -1  # > 0: stop after this many optimizer steps (overrides epochs); -1: train for epochs
    questions_per_step: int = 128  # questions (GRPO) or examples (SFT) per optimizer step
    batch_size: int = 8  # per device per micro-batch: completions (GRPO) or examples (SFT)
    grad_accum: int | None = None  # gradient accumulation steps (null: from questions_per_step)
    optim: str = "adamw_torch"  # any transformers optimizer name (adamw_8bit needs bitsandbytes)
    lr_scheduler: str = "constant"  # transformers scheduler name: constant, linear, cosine, ...
    warmup: float = 0.0  # warm-up steps, or a fraction of the run when < 1
    weight_decay: float = 0.0  # the optimizer's weight decay
    max_grad_norm: float = 1.0  # clip the gradient to this norm (0: no clipping)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"  # training precision (auto: bf16 on GPUs that have it, else fp32)
    gradient_checkpointing: bool = True  # recompute activations in the backward pass: less memory, slower steps
    save_steps: int = 50  # checkpoint every this many steps (resume=auto continues from the last one)
    save_total_limit: int | None = 2  # checkpoints kept (null: every one)
    logging_steps: int = 1  # log the training metrics (train_log.jsonl) every this many steps
    report_to: list[str] = field(default_factory=lambda: ["none"])  # where training metrics go besides train_log.jsonl: none, tensorboard, wandb

    def check(self) -> None:
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise Invalid("learning_rate", "must be a positive number, e.g. 1e-6")
        if self.max_steps <= 0 and self.max_steps != -1:
            raise Invalid("max_steps", "give a positive number of steps, or -1 to train for `epochs`")
        if self.max_steps == -1 and not self.epochs > 0:
            raise Invalid("epochs", "must be positive (or set max_steps)")
        for key in ("questions_per_step", "batch_size", "save_steps", "logging_steps"):
            if getattr(self, key) < 1:
                raise Invalid(key, "must be at least 1")
        if self.grad_accum is not None and self.grad_accum < 1:
            raise Invalid("grad_accum", "must be at least 1 (or null: derived from questions_per_step)")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise Invalid("save_total_limit", "must be at least 1, or null to keep every checkpoint")
        for key in ("warmup", "weight_decay"):
            if (problem := finite_problem(getattr(self, key))) is not None:
                raise Invalid(key, problem)
        if (problem := norm_problem(self.max_grad_norm)) is not None:
            raise Invalid("max_grad_norm", problem)
        for key, names, what in (("optim", OPTIMIZERS, "optimizer"), ("lr_scheduler", SCHEDULERS, "scheduler")):
            if getattr(self, key) not in names:
                from difflib import get_close_matches

                near = get_close_matches(getattr(self, key), names, n=1)
                raise Invalid(key, f"'{getattr(self, key)}' is not a transformers {what}"
                              + (f" (did you mean '{near[0]}'?)" if near else "") + f"; choose one of: {', '.join(names)}")
        bad = [r for r in self.report_to if r not in REPORT_TO]
        if bad:
            raise Invalid("report_to", f"'{bad[0]}' is not supported; choose from: {', '.join(REPORT_TO)}")
        if "none" in self.report_to and len(self.report_to) > 1:
            raise Invalid("report_to", "'none' cannot be combined with other loggers")


@dataclass(kw_only=True)
class LoraConfig:
    r: int = 32  # the LoRA rank
    alpha: int = 64  # the LoRA scaling numerator (the update is scaled by alpha / r)
    dropout: float = 0.0  # dropout on the LoRA layers' input
    targets: list[str] = field(default_factory=lambda: list(ALL_LINEAR))  # module names that get adapters (default: every linear layer)
    qlora: bool = False  # 4-bit base weights (bitsandbytes NF4 / Unsloth 4-bit); CUDA only
    rslora: bool = False  # rank-stabilised LoRA: scale by alpha / sqrt(r)

    def check(self) -> None:
        if self.r < 1:
            raise Invalid("r", "the LoRA rank must be at least 1")
        if self.r > VLLM_LORA_RANKS[-1]:
            raise Invalid("r", f"ranks above {VLLM_LORA_RANKS[-1]} cannot be served by vLLM; pick a smaller one")
        if self.alpha <= 0:
            raise Invalid("alpha", "must be positive (commonly r or 2·r)")
        if not 0 <= self.dropout < 1:
            raise Invalid("dropout", "must be in [0, 1)")
        if not self.targets:
            raise Invalid("targets", "name at least one module, e.g. q_proj,v_proj")


@dataclass(kw_only=True)
class VllmConfig:
    enabled: bool | None = None  # use vLLM for the rollouts (null: on with CUDA when vllm is installed)
    mode: Literal["colocate", "server"] = "colocate"  # colocate: vLLM in the training processes; server: start `trl vllm-serve` yourself
    gpu_memory_utilization: float = 0.5  # share of GPU memory for the vLLM engine (colocate / Unsloth)
    max_model_len: int | None = None  # vLLM's context length (default: grpo.max_prompt_length + grpo.max_completion_length)
    tensor_parallel_size: int = 1  # GPUs each vLLM engine is split across (colocate: must divide the number of processes)
    sleep_mode: bool = False  # TRL colocate: offload vLLM while training
    standby: bool = False  # Unsloth: UNSLOTH_VLLM_STANDBY=1 (then gpu_memory_utilization ~0.9)
    max_lora_rank: int | None = None  # the largest LoRA rank vLLM serves (default: lora.r rounded up to a rank vLLM accepts)
    server_base_url: str | None = None  # server mode: the server's URL (instead of server_host and server_port)
    server_host: str = "0.0.0.0"  # server mode: the vLLM server's host (when server_base_url is not given)
    server_port: int = 8000  # server mode: its port
    server_timeout: float = 240.0  # server mode: seconds to wait for it to answer

    def check(self) -> None:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise Invalid("gpu_memory_utilization", "must be in (0, 1], e.g. 0.5")
        if self.tensor_parallel_size < 1:
            raise Invalid("tensor_parallel_size", "must be at least 1")
        if self.max_lora_rank is not None and self.max_lora_rank not in VLLM_LORA_RANKS:
            raise Invalid("max_lora_rank", f"vLLM accepts only {', '.join(map(str, VLLM_LORA_RANKS))}")
        if self.max_model_len is not None and self.max_model_len < 16:
            raise Invalid("max_model_len", "must be at least the prompt plus completion length")
        if self.max_model_len is not None and (problem := tokens_problem(self.max_model_len, "tokens of context")):
            raise Invalid("max_model_len", problem)


@dataclass(kw_only=True)
class GrpoConfig(Sampling):
    """GRPO's settings; temperature and top_p are `xling.generate.sampling.Sampling`'s, its token limit
    max_completion_length."""

    TOKENS = "max_completion_length"

    num_generations: int = 16  # rollouts per question (G)
    max_prompt_length: int = 1024  # prompt tokens at most: longer prompts are dropped (and counted) before training
    max_completion_length: int = 4096  # new tokens per rollout at most (longer rollouts are cut off)
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = "dapo"  # the policy loss, by TRL's name for it
    beta: float = 0.001  # KL coefficient (the paper's objective has one; 0.001 as verl); 0: no KL term
    scale_rewards: Literal["group", "batch", "none"] = "group"  # divide advantages by the reward std of the group, the batch, or not at all
    epsilon: float = 0.2  # the lower clip range of the importance ratio (1 - epsilon)
    epsilon_high: float | None = None  # the upper clip range (1 + epsilon_high); default: epsilon, or 5.0 for cispo (0.28: DAPO's clip-higher)
    num_iterations: int = 1  # optimisation passes over each batch of rollouts (mu)
    mask_truncated_completions: bool = False  # leave rollouts cut off at max_completion_length out of the loss
    importance_sampling_correction: bool = True  # vLLM rollouts: correct the sampler/trainer mismatch
    importance_sampling_mode: Literal["auto", "token_truncate", "token_mask", "sequence_truncate",
                                      "sequence_mask"] = "auto"  # how that correction is applied (auto: token_truncate for vespo, else TRL's sequence_mask)
    log_completions: bool = False  # write checkpoints/completions/*.parquet each logging step

    def check(self) -> None:
        if self.num_generations < 2:
            raise Invalid("num_generations", "GRPO needs at least 2 rollouts per question to compute advantages")
        self.check_samples(self.num_generations, "temperature",
                           "must be above 0: GRPO samples several different rollouts per question")
        for key in ("max_prompt_length", "max_completion_length", "num_iterations"):
            if getattr(self, key) < 1:
                raise Invalid(key, "must be at least 1")
        for key in ("max_prompt_length", "max_completion_length"):
            if (problem := tokens_problem(getattr(self, key))) is not None:
                raise Invalid(key, problem)
        for key in ("beta", "epsilon", "epsilon_high"):
            value = getattr(self, key)
            if value is not None and not math.isfinite(value):
                raise Invalid(key, f"must be a finite number, got {value}")
        if self.beta < 0:
            raise Invalid("beta", "must be 0 or more")
        if self.epsilon <= 0 or (self.epsilon_high is not None and self.epsilon_high < self.epsilon):
            raise Invalid("epsilon_high" if self.epsilon > 0 else "epsilon",
                          "clip ranges: epsilon > 0 and epsilon_high >= epsilon")
        if (self.loss_type == "vespo" and self.importance_sampling_correction
                and self.importance_sampling_mode.startswith("sequence")):
            raise Invalid("importance_sampling_mode", f"loss_type=vespo weighs whole sequences itself and TRL refuses "
                          f"it with vLLM's sequence-level correction ({self.importance_sampling_mode}); use "
                          "token_truncate or token_mask (auto picks token_truncate)")
        if self.loss_type == "cispo" and self.epsilon_high is not None and self.epsilon_high < 1:
            raise Invalid("epsilon_high", f"with loss_type=cispo it caps the importance weight itself and must be "
                          f"at least 1 (e.g. 5.0, the default), got {self.epsilon_high}")


@dataclass(kw_only=True)
class RewardsConfig(ScoreSection):
    """The reward mix; grading and language ID (langid, min_chars, reasoning_only, timeout, workers) are
    `xling.grading.settings.ScoreSection`'s, as evaluation's `score.*`."""

    set: str = "paper"  # a reward set of xling.train.rewards.REWARD_SETS (paper: 0.8 acc + 0.1 format + 0.1 lang)
    weights: dict[str, float] = field(default_factory=dict)  # reward -> weight, instead of a set, e.g. {accuracy: 1.0}
    require_think: bool = False  # the format reward asks for a closed <think> block before the answer
    embedding_model: str | None = None  # pivot rewards: a sentence-transformers model (default LaBSE; 'tiny')
    translator: str | None = None  # pivot_translate: the model translating answers into English ('tiny')

    def check(self) -> None:
        from xling.train.rewards import REWARD_FUNCTIONS, REWARD_SETS

        if not self.weights and self.set not in REWARD_SETS:
            raise Invalid("set", f"unknown reward set '{self.set}'; choose one of: {', '.join(REWARD_SETS)}")
        for name in self.weights:
            if name not in REWARD_FUNCTIONS:
                raise Invalid("weights", f"unknown reward '{name}'; choose from: {', '.join(REWARD_FUNCTIONS)}")
        super().check()
        mix = self.weights or REWARD_SETS.get(self.set, {})
        if "pivot_translate" in mix and not self.translator:
            raise Invalid("translator", "reward pivot_translate translates answers into English: give "
                          "rewards.translator=MODEL (a local instruct model folder or hub id)")

    def options(self) -> dict:
        """Keyword options for `xling.train.rewards.build_rewards`."""
        opts = {"langid": self.langid, "min_chars": self.min_chars, "reasoning_only": self.reasoning_only,
                "require_think": self.require_think, "timeout": self.timeout, "workers": self.workers}
        if self.embedding_model:
            opts["embedding_model"] = self.embedding_model
        if self.translator:
            opts["translator"] = self.translator
        return opts

    def mix(self) -> str | dict[str, float]:
        return dict(self.weights) if self.weights else self.set


@dataclass(kw_only=True)
class SftConfig:
    target: Literal["solution", "reference"] = "solution"  # the column SFT learns to write
    max_length: int = 5120  # prompt + completion tokens at most; longer examples are dropped
    add_box: bool = True  # append "\boxed{answer}" to a target that has no box

    def check(self) -> None:
        if self.max_length < 16:
            raise Invalid("max_length", "must be at least 16 tokens")


@dataclass(kw_only=True)
class RftConfig(SamplingSection):
    """Rejection-sampling settings; temperature, top_p and max_tokens are `xling.generate.sampling.SamplingSection`'s."""

    samples: int = 8  # answers sampled per problem
    keep: int = 1  # correct answers kept per problem (distinct texts)
    generator: Literal["auto", "hf", "vllm"] = "auto"  # sampling backend (auto: vllm with CUDA when installed, else hf)
    gpu_memory_utilization: float = 0.85  # vllm: share of the GPU's memory while sampling (before training, in its own process)
    chunk: int = 64  # problems per generator call (the unit of resume)

    def check(self) -> None:
        for key in ("samples", "keep", "chunk"):
            if getattr(self, key) < 1:
                raise Invalid(key, "must be at least 1")
        self.check_samples(self.samples, "temperature", "must be above 0: RFT samples several different answers")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise Invalid("gpu_memory_utilization", "must be in (0, 1], e.g. 0.85")


@dataclass(kw_only=True)
class TrainRecipe(Recipe):
    """Keys every training task has; `train_grpo`, `train_sft` and `train_rft` add their sections."""

    model: ModelConfig = field(default_factory=ModelConfig)  # the model trained
    data: TrainData = field(default_factory=TrainData)  # the training set
    train: TrainConfig = field(default_factory=TrainConfig)  # the optimizer, batches, steps and checkpoints
    lora: LoraConfig = field(default_factory=LoraConfig)  # the LoRA adapter (train.backend peft or unsloth)
    plan: PlanConfig = field(default_factory=PlanConfig)  # what the plan (--dry-run) assumes; changes no result
    resume: str = "auto"  # auto: continue from the last checkpoint; never: start over; or a checkpoint path

    def check(self) -> None:
        check_common(self)


def check_common(cfg: TrainRecipe) -> None:
    """Checks across sections, shared by the training tasks."""
    backend = cfg.train.backend
    if backend == "full":
        if cfg.lora.qlora:
            raise Invalid("lora.qlora", "QLoRA trains adapters; train.backend=full trains every weight. "
                          "Use train.backend=peft or unsloth with lora.qlora=true")
        if cfg.model.adapter:
            raise Invalid("model.adapter", "train.backend=full trains the model itself; merge the adapter first, "
                          "or use train.backend=peft")
    if backend == "unsloth" and cfg.model.adapter:
        raise Invalid("model.adapter", "starting from a saved adapter is supported by train.backend=peft")
    resume = str(cfg.resume).strip()
    if not resume:
        raise Invalid("resume", "give auto, never, or the path of a checkpoint folder")
    if cfg.data.k is None and not cfg.data.langs:
        raise Invalid("data.langs", "give at least one training language")


@dataclass(kw_only=True)
class RftRecipe(TrainRecipe):
    """The recipe of task `train-rft`."""

    sft: SftConfig = field(default_factory=SftConfig)  # how the kept answers are learned (SFT settings)
    rft: RftConfig = field(default_factory=RftConfig)  # how answers are sampled and kept

    def check(self) -> None:
        super().check()
        batch_plan(self.train, 1)
        if self.rft.keep > self.rft.samples:
            raise Invalid("rft.keep", f"keeps more answers ({self.rft.keep}) than are sampled ({self.rft.samples})")
