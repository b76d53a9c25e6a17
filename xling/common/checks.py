"""Checks of recipe values that several sections share, each returning the problem (a message) or None.

A config section calls them from its `check()` (or `__post_init__`) and raises `Invalid` with its
own key, so that every task that has the key refuses the same values with the same words, before
any work: seeds, worker counts, gradient norms, token counts and lengths, bootstrap replicates,
and the optimizer and scheduler names transformers knows.

Nothing here imports torch or transformers (a recipe is checked in a fraction of a second);
`OPTIMIZERS` and `SCHEDULERS` are transformers' own lists, copied, and a test keeps them equal.
"""

from __future__ import annotations

import math
import os

SEED_MAX = 2**32 - 1  # numpy's (and so transformers' set_seed) largest seed
WORKERS_PER_CORE = 4
# No model generates or holds more tokens than this; a value above it is a typo (1e15), never a setting.
MAX_TOKENS = 1 << 24

# transformers 5.17's training_args.OptimizerNames and trainer_utils.SchedulerType values.
OPTIMIZERS = (
    "adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused",
    "adafactor", "adamw_anyprecision", "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad",
    "adamw_bnb_8bit", "adamw_8bit", "ademamix_8bit", "lion_8bit", "lion_32bit", "paged_adamw_32bit",
    "paged_adamw_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit", "paged_lion_32bit", "paged_lion_8bit",
    "rmsprop", "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit", "galore_adamw", "galore_adamw_8bit",
    "galore_adafactor", "galore_adamw_layerwise", "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise",
    "lomo", "adalomo", "grokadamw", "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd",
    "apollo_adamw", "apollo_adamw_layerwise", "stable_adamw",
)
SCHEDULERS = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
    "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
    "warmup_stable_decay", "greedy",
)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def seed_problem(value) -> str | None:
    if not _integer(value) or not 0 <= value <= SEED_MAX:
        return f"must be a whole number from 0 to {SEED_MAX} (2**32 - 1), got {value}"
    return None


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def workers_problem(value, what: str = "worker processes") -> str | None:
    """0 (in this process) up to WORKERS_PER_CORE × the cores this process may use."""
    bound = WORKERS_PER_CORE * cores()
    if not _integer(value) or value < 0:
        return f"must be 0 (work in this process) or more, got {value}"
    if value > bound:
        return (f"{value} {what} is more than {bound} ({WORKERS_PER_CORE} × the {cores()} cores here): each is a "
                f"process of its own, and more than the cores only slows the work down; give at most {bound}")
    return None


def norm_problem(value) -> str | None:
    """A gradient-clipping norm: finite and above 0, or 0 to clip nothing."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        return f"must be a finite number above 0 (e.g. 1.0), or 0 to clip nothing, got {value}"
    return None


def finite_problem(value, minimum: float = 0.0) -> str | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < minimum:
        return f"must be a finite number of at least {minimum:g}, got {value}"
    return None


def tokens_problem(value, what: str = "tokens") -> str | None:
    """A number of tokens (to generate, or a context length): at least 1 and at most MAX_TOKENS."""
    if not _integer(value) or value < 1:
        return f"must be at least 1, got {value}"
    if value > MAX_TOKENS:
        return f"{value:,} {what} is more than any model handles (at most {MAX_TOKENS:,}); give a realistic length"
    return None


def length_problem(max_tokens: int, max_model_len: int | None, tokens_key: str = "max_tokens") -> str | None:
    """A context length that cannot hold the answers it is asked for, or an impossible one."""
    if max_model_len is None:
        return None
    problem = tokens_problem(max_model_len, "tokens of context")
    if problem:
        return problem
    if max_tokens > max_model_len:
        return (f"{max_model_len} tokens of context cannot hold answers of {tokens_key}={max_tokens} (and the prompt); "
                f"raise it or lower {tokens_key}")
    return None


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


BYTES_PER_REPLICATE = 16  # the least a replicate holds: one accuracy of one cell and one value of one statistic


def n_boot_problem(n_boot, per_replicate: int = BYTES_PER_REPLICATE, what: str = "") -> str | None:
    """Bootstrap replicates: at least 2, and their arrays within the memory available.

    `per_replicate`: bytes each replicate needs (at least 16: one cell's accuracy and one statistic;
    more where the caller knows the cells or items)."""
    if not _integer(n_boot) or n_boot < 2:
        return f"must be at least 2 (1000 gives 95% intervals), got {n_boot}"
    need = n_boot * per_replicate
    free = available_memory()
    if free is not None and need > free:
        return (f"{n_boot:,} bootstrap replicates need at least {size(need)} of memory ({per_replicate} bytes each"
                f"{what}), more than the {size(free)} available; lower n_boot (1000 gives 95% intervals)")
    return None
