"""What the planner (`xling.planning.plan`) knows about devices and models: a GPU table and model shapes.

- `GPUS`: known GPUs by the name a recipe gives (`plan.gpu=h100-80gb`): memory as torch reports
  it, compute capability (bf16 from 8.0 up), dense bf16/fp16 tensor peak and memory bandwidth from
  the vendors' data sheets. The planner's *assumed* rates follow from these two numbers by two
  stated rules (`TRAIN_SHARE_OF_PEAK`, `DECODE_FLOP_PER_BYTE`), not from measurements.
- `detect_gpu()`: the GPU torch sees (imported lazily), matched to the table by name; an unknown
  one is matched by memory, and the match is stated as an assumption. No GPU: the CPU.
- `Arch` / `model_arch()`: a model's shape (hidden size, layers, heads, vocabulary) from a table of
  known model ids, from a local folder's config.json, or from the Hugging Face cache; parameter
  counts, LoRA parameter counts and KV-cache bytes follow from the shape.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass, replace
from difflib import get_close_matches
from pathlib import Path

GIB = 1024 ** 3
# Assumed effective training throughput: this share of the dense bf16 (fp16) tensor peak.
TRAIN_SHARE_OF_PEAK = 0.25
# Assumed large-batch decode (vLLM): FLOP per byte of memory bandwidth (2N FLOP per token).
DECODE_FLOP_PER_BYTE = 32.0
# CPU: effective fp32 FLOP/s per core (a 2-core machine multiplied 2048x2048 fp32 matrices at ~56 GFLOP/s
# per core; training reaches a fraction of that), and the cost per generated token beyond the model's FLOP
# (transformers generate, sampling, rewards, the training step's own overheads): tiny-model GRPO steps of
# 32 rollouts x ~230 tokens took 5 s of CPU time (16 s of wall time on that loaded machine), ~0.7-2 ms a token.
CPU_FLOPS_PER_CORE = 15e9
CPU_TOKEN_OVERHEAD_S = 1.0e-3


@dataclass(frozen=True)
class Gpu:
    """A device the planner can plan for: a GPU of the table, an unknown GPU, or the CPU."""

    key: str  # the table's name (h100-80gb), "cpu", or the nearest table name for an unknown GPU
    name: str  # what the device calls itself, e.g. "NVIDIA H100 80GB HBM3"
    memory_gib: float  # total memory (GPU), or RAM (CPU)
    capability: tuple[int, int] | None = None  # CUDA compute capability; None on CPU
    peak_tflops: float = 0.0  # dense bf16 (fp16 before Ampere) tensor peak, data sheet
    bandwidth_tbs: float = 0.0  # memory bandwidth in TB/s, data sheet
    patterns: tuple[str, ...] = ()  # regular expressions that recognise its torch device name
    cores: int = 0  # CPU only
    assumption: str | None = None  # how an unknown device was matched

    @property
    def cpu(self) -> bool:
        return self.key == "cpu"

    @property
    def bf16(self) -> bool:
        return self.capability is not None and self.capability >= (8, 0)

    @property
    def train_flops(self) -> float:
        """Assumed effective training FLOP/s."""
        if self.cpu:
            return self.cores * CPU_FLOPS_PER_CORE
        return TRAIN_SHARE_OF_PEAK * self.peak_tflops * 1e12

    @property
    def decode_flops(self) -> float:
        """Assumed effective decode FLOP/s (2N FLOP per generated token)."""
        if self.cpu:
            return self.cores * CPU_FLOPS_PER_CORE
        return DECODE_FLOP_PER_BYTE * self.bandwidth_tbs * 1e12

    def describe(self) -> str:
        if self.cpu:
            return f"CPU ({self.cores} cores, {self.memory_gib:.0f} GiB RAM)"
        precision = "bf16" if self.bf16 else "no bf16: fp16"
        return f"{self.key} ({self.name}, {self.memory_gib:.1f} GiB, {precision})"


def _gpu(key, name, memory_gib, capability, peak, bandwidth, *patterns) -> Gpu:
    return Gpu(key, name, memory_gib, capability, peak, bandwidth, tuple(patterns))


# Memory: about what torch reports as total_memory, in GiB. Peak: dense bf16 tensor TFLOP/s with fp32
# accumulation (fp16 on T4/V100). Bandwidth: TB/s. From the vendors' data sheets (SXM parts for H100/A100;
# the A10G, which has none of its own, with the A10's figures).
GPUS: dict[str, Gpu] = {g.key: g for g in (
    _gpu("h200-141gb", "NVIDIA H200", 139.8, (9, 0), 989.0, 4.8, r"\bH200\b"),
    _gpu("h100-80gb", "NVIDIA H100 80GB HBM3", 79.2, (9, 0), 989.0, 3.35, r"\bH100\b"),
    _gpu("a100-80gb", "NVIDIA A100-SXM4-80GB", 79.3, (8, 0), 312.0, 2.04, r"\bA100\b"),
    _gpu("a100-40gb", "NVIDIA A100-SXM4-40GB", 39.4, (8, 0), 312.0, 1.55, r"\bA100\b"),
    _gpu("l40s-48gb", "NVIDIA L40S", 44.4, (8, 9), 362.0, 0.864, r"\bL40S?\b"),
    _gpu("a6000-48gb", "NVIDIA RTX A6000", 47.4, (8, 6), 155.0, 0.768, r"\bA6000\b"),
    _gpu("rtx4090-24gb", "NVIDIA GeForce RTX 4090", 23.6, (8, 9), 165.0, 1.008, r"\b4090\b"),
    _gpu("rtx3090-24gb", "NVIDIA GeForce RTX 3090", 23.6, (8, 6), 71.0, 0.936, r"\b3090\b"),
    _gpu("a10g-24gb", "NVIDIA A10G", 22.1, (8, 6), 125.0, 0.6, r"\bA10G?\b"),
    _gpu("l4-24gb", "NVIDIA L4", 22.1, (8, 9), 121.0, 0.3, r"\bL4\b"),
    _gpu("v100-32gb", "Tesla V100-SXM2-32GB", 31.7, (7, 0), 125.0, 0.9, r"\bV100\b"),
    _gpu("v100-16gb", "Tesla V100-SXM2-16GB", 15.8, (7, 0), 125.0, 0.9, r"\bV100\b"),
    _gpu("t4-16gb", "Tesla T4", 14.6, (7, 5), 65.0, 0.32, r"\bT4\b"),
)}


def unknown_gpu_message(name: str) -> str:
    near = get_close_matches(str(name).lower(), [*GPUS, "cpu"], n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return f"unknown GPU '{name}'{hint}; known: {', '.join(GPUS)}, cpu"


def cpu_device() -> Gpu:
    """This machine's CPU: cores this process may use, and RAM."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    except (ValueError, OSError, AttributeError):
        ram = 0.0
    return Gpu("cpu", "CPU", round(ram, 1), cores=max(1, cores))


def match_gpu(name: str, memory_gib: float, capability: tuple[int, int]) -> Gpu:
    """A device torch reports, as the table's entry (its name matched, nearest in memory); else by memory."""
    found = [g for g in GPUS.values() if any(re.search(p, name, re.IGNORECASE) for p in g.patterns)]
    if found:
        best = min(found, key=lambda g: abs(g.memory_gib - memory_gib))
        return replace(best, name=name, memory_gib=round(memory_gib, 1), capability=capability)
    best = min(GPUS.values(), key=lambda g: (abs(g.memory_gib - memory_gib), -g.peak_tflops))
    note = (f"GPU '{name}' ({memory_gib:.1f} GiB) is not in the planner's table: its speed is assumed to be "
            f"that of {best.key}, the nearest in memory; name a known one with plan.gpu=NAME")
    return replace(best, name=name, memory_gib=round(memory_gib, 1), capability=capability, assumption=note)


# Device files a Linux GPU driver creates (NVIDIA; AMD ROCm; WSL): without any, there is no GPU to find.
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def detect_gpu() -> Gpu:
    """The GPU this process would train on (device 0), mapped to the table; the CPU when there is none.

    On Linux without a GPU driver's device files, torch (seconds to import) is not imported at all."""
    if sys.platform.startswith("linux") and "torch" not in sys.modules \
            and not any(os.path.exists(p) for p in GPU_DEVICE_FILES):
        return cpu_device()
    try:
        import torch

        if not torch.cuda.is_available():
            return cpu_device()
        props = torch.cuda.get_device_properties(0)
    except Exception:
        return cpu_device()
    return match_gpu(props.name, props.total_memory / GIB, (props.major, props.minor))


def device(name: str | None) -> Gpu:
    """A named device ('h100-80gb', 'cpu'), or the one found here (None)."""
    if name is None:
        return detect_gpu()
    key = str(name).strip().lower()
    if key == "cpu":
        return cpu_device()
    if key not in GPUS:
        from xling.common.errors import ConfigError

        raise ConfigError(f"plan.gpu: {unknown_gpu_message(name)}")
    return GPUS[key]


# -- models ------------------------------------------------------------------------------------------

# Every linear projection of a decoder layer, as LoRA's `targets` name them.
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Arch:
    """The shape of a decoder-only transformer (Qwen2/Llama style: GQA attention, gated MLP)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    head_dim: int | None = None  # default hidden / heads
    tied: bool = True  # the output layer shares the embedding matrix
    qkv_bias: bool = False

    @property
    def dim(self) -> int:
        return self.head_dim or self.hidden // self.heads

    def _shapes(self) -> dict[str, tuple[int, int]]:
        h, d = self.hidden, self.dim
        return {"q_proj": (h, self.heads * d), "k_proj": (h, self.kv_heads * d), "v_proj": (h, self.kv_heads * d),
                "o_proj": (self.heads * d, h), "gate_proj": (h, self.intermediate),
                "up_proj": (h, self.intermediate), "down_proj": (self.intermediate, h)}

    def linear_params(self) -> int:
        """Parameters of the decoder layers' linear projections (what 4-bit quantisation stores in 4 bits)."""
        return self.layers * sum(i * o for i, o in self._shapes().values())

    def params(self) -> int:
        bias = (self.heads + 2 * self.kv_heads) * self.dim if self.qkv_bias else 0
        per_layer_rest = bias + 2 * self.hidden  # biases, two norms
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.linear_params() + self.layers * per_layer_rest + embeddings + self.hidden

    def lora_params(self, r: int, targets: list[str] | tuple[str, ...]) -> tuple[int, list[str]]:
        """LoRA parameters for rank r on these modules in every layer, and the target names not known here."""
        shapes = self._shapes()
        known = [t for t in targets if t in shapes]
        unknown = [t for t in targets if t not in shapes]
        return self.layers * sum(r * (shapes[t][0] + shapes[t][1]) for t in known), unknown

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        return 2 * self.layers * self.kv_heads * self.dim * dtype_bytes


@dataclass(frozen=True)
class ModelShape:
    arch: Arch
    source: str  # where the shape came from, for the assumptions
    exact: bool  # False: guessed (the planner then never refuses a run on memory)
    random: bool = False  # xling.models.tiny's random model: its completions stop at random


def _qwen25(h, layers, heads, kv, inter, vocab=151936, tied=True) -> Arch:
    return Arch(h, layers, heads, kv, inter, vocab, tied=tied, qkv_bias=True)


def _llama3(h, layers, heads, kv, inter, tied, head_dim=None) -> Arch:
    return Arch(h, layers, heads, kv, inter, 128256, head_dim=head_dim, tied=tied)


def _qwen3(h, layers, heads, inter, tied=True) -> Arch:
    return Arch(h, layers, heads, 8, inter, 151936, head_dim=128, tied=tied)


# Shapes of known model families, by size (from their config.json files).
ARCHS: dict[str, Arch] = {
    "qwen2.5-0.5b": _qwen25(896, 24, 14, 2, 4864),
    "qwen2.5-1.5b": _qwen25(1536, 28, 12, 2, 8960),
    "qwen2.5-3b": _qwen25(2048, 36, 16, 2, 11008),
    "qwen2.5-7b": _qwen25(3584, 28, 28, 4, 18944, vocab=152064, tied=False),
    "qwen2.5-14b": _qwen25(5120, 48, 40, 8, 13824, vocab=152064, tied=False),
    "r1-distill-qwen-1.5b": _qwen25(1536, 28, 12, 2, 8960, tied=False),
    "llama-3.2-1b": _llama3(2048, 16, 32, 8, 8192, tied=True, head_dim=64),
    "llama-3.2-3b": _llama3(3072, 28, 24, 8, 8192, tied=True),
    "llama-3.1-8b": _llama3(4096, 32, 32, 8, 14336, tied=False),
    "qwen3-0.6b": _qwen3(1024, 28, 16, 3072),
    "qwen3-1.7b": _qwen3(2048, 28, 16, 6144),
    "qwen3-4b": _qwen3(2560, 36, 32, 9728),
    "qwen3-8b": _qwen3(4096, 36, 32, 12288, tied=False),
    # xling.models.tiny's random model (hidden 64, 2 layers, 4 heads, 2 KV heads, a 1,024-token vocabulary)
    "tiny": Arch(64, 2, 4, 2, 128, 1024, qkv_bias=True),
}

# Model ids (lower case, organisation dropped) -> shape. The -Instruct, -Math and base variants of a size
# share it (Qwen2.5-Math-7B has the 7B's vocabulary; DeepSeek's R1 distills keep their base's shape).
_NAMES: tuple[tuple[str, str], ...] = (
    (r"deepseek-r1-distill-qwen-1\.5b", "r1-distill-qwen-1.5b"),
    (r"deepseek-r1-distill-qwen-7b", "qwen2.5-7b"),
    (r"deepseek-r1-distill-qwen-14b", "qwen2.5-14b"),
    (r"deepseek-r1-distill-llama-8b", "llama-3.1-8b"),
    (r"qwen2\.5-(math-)?0\.5b", "qwen2.5-0.5b"),
    (r"qwen2\.5-(math-)?1\.5b", "qwen2.5-1.5b"),
    (r"qwen2\.5-(math-)?3b", "qwen2.5-3b"),
    (r"qwen2\.5-(math-)?7b", "qwen2.5-7b"),
    (r"qwen2\.5-(math-)?14b", "qwen2.5-14b"),
    (r"llama-3\.2-1b", "llama-3.2-1b"),
    (r"llama-3\.2-3b", "llama-3.2-3b"),
    (r"(meta-)?llama-3(\.1)?-8b", "llama-3.1-8b"),
    (r"qwen3-0\.6b", "qwen3-0.6b"),
    (r"qwen3-1\.7b", "qwen3-1.7b"),
    (r"qwen3-4b", "qwen3-4b"),
    (r"qwen3-8b", "qwen3-8b"),
)


def arch_from_config(config: dict) -> Arch:
    """The shape in a transformers config.json (ValueError when a key it needs is missing)."""
    cfg = config.get("text_config") or config
    try:
        heads = int(cfg["num_attention_heads"])
        return Arch(
            hidden=int(cfg["hidden_size"]), layers=int(cfg["num_hidden_layers"]), heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads), intermediate=int(cfg["intermediate_size"]),
            vocab=int(cfg["vocab_size"]), head_dim=cfg.get("head_dim"),
            tied=bool(cfg.get("tie_word_embeddings", config.get("tie_word_embeddings", False))),
            qkv_bias=bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"config.json lacks {e}") from None


def _read_config(path: Path) -> Arch | None:
    try:
        return arch_from_config(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _cached_config(name: str) -> Path | None:
    """config.json of a hub id already in the local Hugging Face cache (no network)."""
    if name.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id=name, filename="config.json")
    except Exception:
        return None
    return Path(found) if isinstance(found, str) else None


def _gguf_shape(path: Path) -> ModelShape | None:
    """The shape written in a GGUF file's metadata (`<arch>.block_count`, `.embedding_length`, ...), for a
    `.gguf` file or a folder holding one; None for anything else or a file whose metadata cannot be read."""
    from xling.common.errors import XlingError
    from xling.models.gguf import gguf_file

    try:
        file = gguf_file(path)
    except XlingError:
        return None
    if file is None:
        return None
    try:
        import gguf

        reader = gguf.GGUFReader(str(file))
        fields = reader.fields
        arch = fields["general.architecture"].contents()

        def meta(key):
            return int(fields[f"{arch}.{key}"].contents())

        hidden, heads = meta("embedding_length"), meta("attention.head_count")
        kv = meta("attention.head_count_kv") if f"{arch}.attention.head_count_kv" in fields else heads
        vocab = len(fields["tokenizer.ggml.tokens"].data)
        tied = "output.weight" not in {t.name for t in reader.tensors}
        shape = Arch(hidden, meta("block_count"), heads, kv, meta("feed_forward_length"), vocab, tied=tied)
    except Exception:  # not a GGUF file after all, or metadata of another layout: the shape is guessed instead
        return None
    return ModelShape(shape, f"the metadata of {file.name}", True)


def model_shape(name: str) -> ModelShape:
    """The shape of `model.name`: the tiny model, a local folder, a known id, the HF cache, or a guess."""
    name = str(name).strip()
    if name == "tiny":
        return ModelShape(ARCHS["tiny"], "xling.models.tiny's random model", True, random=True)
    if name == "toy":  # the classroom demo's pretrained model, with its default settings (xling.models.toy)
        from xling.models.toy import ToyConfig

        t = ToyConfig()
        arch = Arch(t.hidden_size, t.layers, t.heads, t.kv_heads, t.intermediate_size, t.vocab_size)
        return ModelShape(arch, "xling.models.toy's pretrained model (its default settings)", True)
    local = Path(name).expanduser()
    if (local / "config.json").is_file():
        arch = _read_config(local / "config.json")
        if arch is not None:
            return ModelShape(arch, f"{local / 'config.json'}", True)
    gguf_shape = _gguf_shape(local)
    if gguf_shape is not None:
        return gguf_shape
    if "/" in name and re.fullmatch(r"tiny(-\w+)?", local.name) and not local.exists():
        return ModelShape(ARCHS["tiny"], f"assumed: xling.models.tiny's random model, which {name} will hold once built",
                          False, random=True)
    short = name.lower().rsplit("/", 1)[-1]
    for pattern, key in _NAMES:
        if re.match(pattern, short):
            return ModelShape(ARCHS[key], f"the table's {key} shape", True)
    cached = _cached_config(name)
    if cached is not None:
        arch = _read_config(cached)
        if arch is not None:
            return ModelShape(arch, "its config.json in the Hugging Face cache", True)
    size = re.search(r"(\d+(?:\.\d+)?)b\b", short)
    qwen = {k: a for k, a in ARCHS.items() if k.startswith("qwen2.5-")}
    if size:
        want = float(size.group(1)) * 1e9
        key = min(qwen, key=lambda k: abs(math.log(qwen[k].params() / want)))
        why = f"its name says {size.group(1)}B"
    else:
        key, why = "qwen2.5-1.5b", "its name gives no size"
    return ModelShape(ARCHS[key], f"assumed: shaped like {key} ({why}); give a local folder with config.json "
                                  "for exact numbers", False)
