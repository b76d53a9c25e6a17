"""An evaluation's settings: `EvalSection` (the keys evaluate and observational share), generation (`gen`),
extra evaluation models; scoring (`score`) is `xling.grading.settings.ScoreSection`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from xling.analysis.settings import StudySection
from xling.common.config import Invalid, section_check
from xling.data.languages import LANGUAGES, unknown_language_message
from xling.data.prompts import Variant
from xling.generate.sampling import SamplingSection
from xling.grading.settings import ScoreSection

PAPER_N = {"aime24": 16, "aime25": 16}  # samples per question (docs/protocol.md#evaluation-benchmarks); others: 1


DTYPES = ("auto", "bfloat16", "float16", "float32")  # gen.dtype: what both generation backends load


@dataclass(kw_only=True)
class GenConfig(SamplingSection):
    """Generation settings (defaults: docs/protocol.md#generation); temperature, top_p and max_tokens
    are `xling.generate.sampling.SamplingSection`'s."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 8192
    backend: Literal["auto", "hf", "vllm"] = "auto"  # generation backend (auto: vllm on CUDA, else hf)
    n: dict[str, int] = field(default_factory=lambda: dict(PAPER_N))  # benchmark -> samples per question (a benchmark not named: 1)
    chunk: int = 0  # conversations per generation call (what a crash can lose); 0: hf batch_size, vllm 256
    batch_size: int = 8  # hf: conversations per generate() call
    dtype: str = "auto"  # weights' dtype: auto, bfloat16, float16 or float32 (auto: bfloat16 on CUDA, float32 on CPU)
    max_lora_rank: int | None = None  # vllm: the largest LoRA rank served (null: the adapter's rank rounded up to an allowed value)
    gpu_memory_utilization: float = 0.9  # vllm on a GPU: share of its memory for weights and KV cache
    max_model_len: int | None = None  # vllm: the context length, prompt and answer (null: the model's)
    enforce_eager: bool | None = None  # vllm: no CUDA graphs / torch.compile (null: vLLM's default, eager on CPU)
    engine: dict[str, Any] = field(default_factory=dict)  # vllm: more vllm.LLM keywords, e.g. {kv_cache_memory_bytes: 4e9}

    def samples(self, benchmark: str) -> int:
        return int(self.n.get(benchmark, 1))

    def check(self) -> None:
        super().check()
        for b, k in self.n.items():
            if k < 1:
                raise Invalid(f"n.{b}", "ask for at least one sample per question")
        if self.chunk < 0 or self.batch_size < 1:
            raise Invalid("chunk", "chunk must be 0 (automatic) or more and batch_size at least 1")
        if self.dtype not in DTYPES:
            raise Invalid("dtype", f"'{self.dtype}' is not a dtype generation can load; choose one of: {', '.join(DTYPES)}")
        if self.max_lora_rank is not None:
            from xling.generate.lora import ALLOWED_LORA_RANKS

            if self.max_lora_rank not in ALLOWED_LORA_RANKS:
                raise Invalid("max_lora_rank", f"vLLM accepts only {', '.join(map(str, ALLOWED_LORA_RANKS))}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise Invalid("gpu_memory_utilization", "must be in (0, 1]")
        from xling.common.checks import length_problem

        if (problem := length_problem(self.max_tokens, self.max_model_len)) is not None:
            raise Invalid("max_model_len", problem)


@dataclass
class Extra:
    """One more trained model of the same run (e.g. one adapter per number of training languages)."""

    name: str  # its label in tables
    adapter: str | None = None  # its LoRA adapter folder (on `model`)
    model: str | None = None  # its model (default: the run's `model`)
    train_langs: list[str] = field(default_factory=lambda: ["en"])  # languages it was trained on
    x: int | None = None  # training languages on the scaling curve (default: len(train_langs))
    paradigm: str | None = None  # how it was trained (RL, SFT, ...): models are grouped by it


def check_samples(gen: GenConfig, benchmarks, prefix: str = "gen") -> None:
    """Samples per question of the benchmarks evaluated, under `prefix` (gen, pairs[i].gen): greedy decoding
    with more than one sample (AIME's 16 at temperature 0) is refused (`xling.generate.sampling`)."""
    for b in benchmarks:
        try:
            gen.check_samples(gen.samples(b), f"n.{b}" if b in gen.n else "temperature")
        except Invalid as e:
            raise Invalid(f"{prefix}.{e.key}", e.message) from None


@dataclass(kw_only=True)
class EvalSection:
    """The keys every evaluation recipe has (`evaluate`, `observational`, `probes`): the languages and problems
    asked, how they are prompted and how answers are generated (`gen`)."""

    langs: list[str] = field(default_factory=lambda: ["all"])  # languages; all: every language each benchmark has
    limit: int | None = None  # the first N problems per language (null: every problem)
    template_from: str | None = None  # borrow a chat template (instruct model, 'chatml'); base models need one
    prefix: bool = True  # prompt hacking: pre-fill the assistant turn with the language's prefix
    gen: GenConfig = field(default_factory=GenConfig)  # how answers are generated
    cache: str | None = None  # completions cache folder (default: RUN/completions); share it between runs

    def check(self) -> None:
        if not self.langs:
            raise Invalid("langs", "give languages (e.g. langs=en,de,zh) or langs=all")
        for code in self.langs:
            if code != "all" and code not in LANGUAGES:
                raise Invalid("langs", unknown_language_message(code))
        section_check(self.gen, "gen")
        if self.limit is not None and self.limit < 1:
            raise Invalid("limit", "must be at least 1 (or null for every problem)")
        more = getattr(super(), "check", None)  # the study's checks, where the recipe has them
        if more is not None:
            more()


@dataclass(kw_only=True)
class BenchmarkSection(EvalSection, StudySection):
    """An evaluation on benchmarks with a study of its models (`evaluate`, `observational`): `EvalSection`, the
    benchmarks, the prompt wording, scoring (`score`) and the study's settings (`xling.analysis.settings`)."""

    benchmarks: list[str] = field(default_factory=lambda: ["mgsm"])  # benchmarks to evaluate (e.g. mgsm,aime24)
    data: dict[str, str] = field(default_factory=dict)  # benchmark -> local file or folder (else the hub)
    variant: Variant = "paper"  # prompt wording: paper, paper-user, r1, consistency, bare (xling.data.prompts)
    score: ScoreSection = field(default_factory=ScoreSection)  # how answers are graded and their language identified

    def check(self) -> None:
        if not self.benchmarks:
            raise Invalid("benchmarks", "give at least one benchmark, e.g. benchmarks=mgsm")
        super().check()
        check_samples(self.gen, self.benchmarks)
        section_check(self.score, "score")
