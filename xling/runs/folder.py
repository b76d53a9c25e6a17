"""The run-folder protocol: what a run folder holds, the recipe fingerprint that says which recipe a finished run finished, the finished marker, the set-aside of a replaced run's results, and when a folder may be reused."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Iterator

from xling import __version__
from xling.common.config import (
    Recipe,
    dump_yaml,
    to_dict,
)
from xling.common.errors import XlingError
from xling.common.io import (
    atomic_write_json,
    atomic_write_text,
    cannot_write,
    is_temporary,
)
from xling.common.store import fingerprint
from xling.runs.lock import LOCK_NAME

# Files a run folder holds before any work is done; anything else is work worth keeping.
BOOKKEEPING = {"recipe.yaml", "env.json", LOCK_NAME}


FINISHED = "metrics.json"  # the finished marker, written last; it names the recipe it finished


PREVIOUS = "metrics.previous.json"  # a finished run's marker while a forced re-run replaces it


FINGERPRINT = "recipe_fingerprint"


# Where a re-run puts the figures, tables and reports of the finished run it replaces: none of them stays
# beside its own results (a figure of a language the new run no longer has, say); caches stay where they are.
ASIDE = ".previous"


RESULT_SUFFIXES = (".png", ".pdf", ".svg", ".csv", ".md", ".html")


_forced: list[bool] = []  # whether the runs this process is in were started with --force (innermost last)


PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "vllm", "unsloth",
            "unsloth_zoo", "bitsandbytes", "deepspeed", "math-verify", "langdetect",
            "lingua-language-detector", "langid", "sentence-transformers", "sacrebleu", "numpy", "scipy")


def default_out(path: Path, overrides: list[str], resumable: frozenset[str] = frozenset()) -> Path:
    """runs/RECIPE, or runs/RECIPE-<hash of the overrides> (keys a run may change on resume left out)."""
    rest = sorted(o for o in overrides if o.split("=", 1)[0] not in {"out", *resumable})
    if not rest:
        return Path("runs") / path.stem
    digest = hashlib.sha1("\n".join(rest).encode()).hexdigest()[:8]
    return Path("runs") / f"{path.stem}-{digest}"


def comparable(cfg_dict: dict, resumable: frozenset[str] = frozenset()) -> dict:
    """The recipe without the keys that may differ between runs sharing a folder."""
    import copy

    out = copy.deepcopy({k: v for k, v in cfg_dict.items() if k not in ("out", "description")})
    for key in resumable:
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys.extend(changed_keys(a, b, prefix + k + "."))
        elif a != b:
            keys.append(prefix + k)
    return keys


def environment() -> dict:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {
        "xling": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": " ".join(shlex.quote(a) for a in ["python", "run.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "packages": versions,
    }


def recipe_fingerprint(cfg_dict: dict) -> str:
    """A short hash of everything in a recipe that a run's results depend on (not out, not description)."""
    return fingerprint(comparable(cfg_dict))


def finished_fingerprint(run_dir: Path) -> str | None:
    """The fingerprint of the recipe whose finished run `run_dir/metrics.json` marks: None when there
    is no marker, or one that does not parse as a JSON object (a damaged marker marks nothing, so the
    run counts as unfinished); "" for a marker that names no recipe (written before markers did)."""
    marker = run_dir / FINISHED
    if not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return str(data.get(FINGERPRINT) or "")


@contextmanager
def forcing(force: bool) -> Iterator[None]:
    """While a run started with (or without) --force is in progress in this process: `forced()` says which."""
    _forced.append(force)
    try:
        yield
    finally:
        _forced.pop()


def forced() -> bool:
    """Whether the run this process is in was started with --force (a sweep passes it to the stages it re-runs)."""
    return bool(_forced and _forced[-1])


def _results(run_dir: Path):
    """The figures, tables and reports in a run folder, its sub-folders included, but not those of other
    runs (a sub-folder with a recipe.yaml: a sweep's members) nor hidden folders."""
    for p in sorted(run_dir.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir() and not p.is_symlink():
            if not (p / "recipe.yaml").exists():
                yield from _results(p)
        elif p.suffix in RESULT_SUFFIXES and p.is_file():
            yield p


def set_aside_results(run_dir: Path) -> None:
    """Move the finished run's figures, tables and reports into run_dir/.previous/ while a re-run replaces it."""
    aside = run_dir / ASIDE
    for p in list(_results(run_dir)):
        target = aside / p.relative_to(run_dir)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)
        except OSError as e:
            raise cannot_write(target, e) from None


def restore_results(run_dir: Path) -> None:
    """Put back what `set_aside_results` moved (a refused re-run leaves the finished run as it was)."""
    import shutil

    aside = run_dir / ASIDE
    if not aside.is_dir():
        return
    for p in sorted(aside.rglob("*")):
        target = run_dir / p.relative_to(aside)
        if p.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)
    shutil.rmtree(aside, ignore_errors=True)


def has_work(run_dir: Path) -> bool:
    """Whether the folder holds anything beyond bookkeeping (a killed write's temporary file is not work)."""
    return any(p.name not in BOOKKEEPING and not is_temporary(p) for p in run_dir.iterdir())


def remove_temporaries(run_dir: Path) -> None:
    """Temporary files that a killed atomic write left in the folder itself (sub-folders are other runs')."""
    for p in run_dir.iterdir():
        if is_temporary(p) and p.is_file():
            p.unlink(missing_ok=True)


def check_run_dir(run_dir: Path) -> None:
    """What `open_run_dir` would refuse, found without creating anything (for --dry-run)."""
    for p in [run_dir, *run_dir.parents]:
        if p.exists():
            if not p.is_dir():
                where = "is a file, not a folder" if p == run_dir else "a part of that path is a file, not a folder"
                raise XlingError(f"out={run_dir}{' ' if p == run_dir else ': '}{where}; give another out=DIR")
            return


def open_run_dir(run_dir: Path) -> None:
    """Create the run folder; a path that cannot be one is a one-line error."""
    check_run_dir(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise XlingError(f"out={run_dir}: a part of that path is a file, not a folder; give another out=DIR") from None
    except OSError as e:
        raise XlingError(f"cannot create the run folder {run_dir}: {e.strerror}; give out=DIR in a writable place") \
            from None
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise XlingError(f"the run folder {run_dir} is not writable; give out=DIR in a writable place")


def _saved_recipe(saved: Path) -> dict | None:
    """The recipe a run folder was last prepared for; None without one, {} when it cannot be read."""
    if not saved.exists():
        return None
    import yaml

    try:
        data = yaml.safe_load(saved.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def run_recipe(run_dir: Path, cls: type):
    """The recipe a run folder holds (its recipe.yaml) built as `cls`: what a stage that a run starts in a
    child process (`python -m MODULE RUN_DIR`) reads to know its settings."""
    import yaml

    from xling.common.config import build

    return build(cls, yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8")))


def prepare_run_dir(cfg: Recipe, run_dir: Path, force: bool, resumable: frozenset[str] = frozenset()) -> bool:
    """Create or re-open the run folder. Returns False when a finished identical run is there.

    `resumable`: dotted keys the task lets change between runs in one folder (e.g. train.max_steps).
    The folder holds a finished run of this recipe only when its metrics.json names this recipe's
    fingerprint: the marker of a run that a killed forced re-run was replacing names another one.
    """
    saved = run_dir / "recipe.yaml"
    new_full = to_dict(cfg)
    old_full = _saved_recipe(saved)
    done = finished_fingerprint(run_dir)
    if not force:
        if old_full is not None:
            old, new = comparable(old_full, resumable), comparable(new_full, resumable)
            if old != new and has_work(run_dir):
                changed = ", ".join(changed_keys(old, new)[:6]) if old_full else f"{saved} cannot be read"
                raise XlingError(
                    f"{run_dir} holds work of a different recipe (differs in: {changed}); give another out=DIR, "
                    "or add --force to run there anyway (the task reuses what is still valid)"
                )
        # a marker written before markers named their recipe: recipe.yaml says what it finished
        legacy = done == "" and bool(old_full) and comparable(old_full) == comparable(new_full)
        if done == recipe_fingerprint(new_full) or legacy:
            return False
        if done and old_full and done == recipe_fingerprint(old_full):
            changed = changed_keys(comparable(old_full), comparable(new_full))
            raise XlingError(
                f"{run_dir} holds a finished run; {', '.join(changed[:6])} only take(s) effect while a run is "
                "unfinished: add --force to run it again with this recipe, or give another out=DIR to run afresh"
            )
    if (run_dir / FINISHED).exists():  # from here on the folder holds no finished run until this one ends
        try:
            os.replace(run_dir / FINISHED, run_dir / PREVIOUS)
        except OSError as e:
            raise cannot_write(run_dir / PREVIOUS, e) from None
        set_aside_results(run_dir)
    atomic_write_text(saved, dump_yaml(cfg))
    atomic_write_json(run_dir / "env.json", environment())
    return True
