"""The command line behind run.py: resolve a recipe, prepare its run folder, run its task."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

from . import __version__
from .config import (
    Recipe, available_recipes, build, describe_keys, dump_yaml, merge, parse_overrides,
    read_recipe_file, recipe_path, to_dict,
)
from .console import console, print_error
from .errors import ConfigError, XlingError
from .io import atomic_write_json, atomic_write_text
from .tasks import load_task

USAGE = """\
usage: python run.py RECIPE [key.sub=value ...] [--dry-run] [--force]
       python run.py --list
       python run.py RECIPE --help      (the recipe's keys, types and defaults)

RECIPE is a name under recipes/ (without .yaml) or a path to a YAML file.
Lists are written a,b or [a,b]. Results go to the run folder (out=DIR, default runs/RECIPE...).
  --dry-run   print the fully resolved recipe and run nothing
  --force     run again even if the run folder holds a finished run
"""

# Files a run folder holds before any work is done; anything else is work worth keeping.
BOOKKEEPING = {"recipe.yaml", "env.json"}
PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "vllm", "unsloth",
            "unsloth_zoo", "bitsandbytes", "deepspeed", "math-verify", "langdetect",
            "lingua-language-detector", "langid", "sentence-transformers", "sacrebleu", "numpy", "scipy")


def list_recipes() -> str:
    rows = []
    for name, path in available_recipes().items():
        try:
            desc = str(read_recipe_file(path).get("description", "")).strip().splitlines()[0]
        except (XlingError, IndexError):
            desc = ""
        rows.append((name, desc))
    width = max((len(n) for n, _ in rows), default=0)
    return "recipes:\n" + "\n".join(f"  {n.ljust(width)}  {d}" for n, d in rows)


def resolve(name: str, overrides: list[str]) -> tuple[Recipe, Path]:
    """The recipe `name` with `overrides` applied, as its task's validated Config."""
    path = recipe_path(name)
    data = read_recipe_file(path)
    task_name = data.get("task")
    if not task_name:
        raise ConfigError(f"recipe {path} has no 'task' key; add e.g. 'task: transfer'")
    over = parse_overrides(overrides)
    if "task" in over:
        raise ConfigError("recipe key 'task' cannot be overridden; pick another recipe instead")
    task = load_task(str(task_name))
    return build(task.Config, merge(data, over)), path


def default_out(path: Path, overrides: list[str], resumable: frozenset[str] = frozenset()) -> Path:
    """runs/RECIPE, or runs/RECIPE-<hash of the overrides> (keys a run may change on resume left out)."""
    rest = sorted(o for o in overrides if o.split("=", 1)[0] not in {"out", *resumable})
    if not rest:
        return Path("runs") / path.stem
    digest = hashlib.sha1("\n".join(rest).encode()).hexdigest()[:8]
    return Path("runs") / f"{path.stem}-{digest}"


def _comparable(cfg_dict: dict, resumable: frozenset[str] = frozenset()) -> dict:
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


def _changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys.extend(_changed_keys(a, b, prefix + k + "."))
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
        "packages": versions,
    }


def prepare_run_dir(cfg: Recipe, run_dir: Path, force: bool, resumable: frozenset[str] = frozenset()) -> bool:
    """Create or re-open the run folder. Returns False when a finished identical run is there.

    `resumable`: dotted keys the task lets change between runs in one folder (e.g. train.max_steps).
    """
    saved = run_dir / "recipe.yaml"
    if saved.exists() and not force:
        import yaml

        old_full = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        old, new = _comparable(old_full, resumable), _comparable(to_dict(cfg), resumable)
        has_work = any(p.name not in BOOKKEEPING for p in run_dir.iterdir())
        if old != new and has_work:
            changed = ", ".join(_changed_keys(old, new)[:6])
            raise XlingError(
                f"{run_dir} holds work of a different recipe (differs in: {changed}); "
                "give another out=DIR, or add --force to run there anyway (the task reuses what is still valid)"
            )
        if (run_dir / "metrics.json").exists():
            changed = _changed_keys(_comparable(old_full), _comparable(to_dict(cfg)))
            if not changed:
                return False
            raise XlingError(
                f"{run_dir} holds a finished run; {', '.join(changed[:6])} only take(s) effect while a run is "
                "unfinished: give another out=DIR to run afresh"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved, dump_yaml(cfg))
    atomic_write_json(run_dir / "env.json", environment())
    return True


def execute(name: str, overrides: list[str], dry_run: bool = False, force: bool = False) -> int:
    cfg, path = resolve(name, overrides)
    task = load_task(cfg.task)
    resumable = frozenset(getattr(task, "RESUMABLE", ()))
    if cfg.out is None:
        cfg.out = str(default_out(path, overrides, resumable))
    if dry_run:
        console.print(dump_yaml(cfg), end="", markup=False, highlight=False)
        return 0
    run_dir = Path(cfg.out)
    finished = run_dir / "metrics.json"
    # What a forced re-run of a finished run replaces, kept until the task has accepted its input.
    previous = {n: (run_dir / n).read_text(encoding="utf-8") for n in sorted(BOOKKEEPING)
                if finished.exists() and (run_dir / n).is_file()}
    # A task that reports on the machine (doctor) is worth running every time.
    if not prepare_run_dir(cfg, run_dir, force or getattr(task, "ALWAYS_RUN", False), resumable):
        console.print(
            f"{run_dir} already holds this finished run (see {run_dir / 'metrics.json'}); "
            "add --force to run it again",
            markup=False,
        )
        return 0
    console.print(f"[bold]{path.stem}[/] ({cfg.task}) -> {run_dir}/", highlight=False)
    try:
        metrics = task.run(cfg, run_dir)
    except XlingError:
        for n, text in previous.items():  # refused input: the finished run stays as it was
            atomic_write_text(run_dir / n, text)
        raise
    except BaseException:
        if previous and finished.exists():  # interrupted: the folder no longer holds that finished run
            os.replace(finished, run_dir / "metrics.previous.json")
        raise
    atomic_write_json(finished, metrics if metrics is not None else {})
    console.print(f"results: {run_dir / 'metrics.json'}", markup=False, highlight=False)
    return 0


def recipe_help(name: str) -> str:
    path = recipe_path(name)
    data = read_recipe_file(path)
    task = load_task(str(data.get("task")))
    lines = [f"recipe {path.stem} (task {data.get('task')}): {data.get('description', '')}", ""]
    rows = describe_keys(task.Config)
    width = max(len(r[0]) for r in rows)
    for key, tp, default in rows:
        set_here = _lookup(data, key)
        shown = f"{set_here!r} (recipe)" if set_here is not _MISSING else default
        lines.append(f"  {key.ljust(width)}  {tp}; default {shown}")
    return "\n".join(lines)


_MISSING = object()


def _lookup(data: dict, dotted: str):
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    flags = {a for a in args if a.startswith("--")}
    rest = [a for a in args if not a.startswith("--")]
    known = {"--list", "--dry-run", "--force", "--help"}
    try:
        unknown = flags - known
        if unknown:
            raise ConfigError(f"unknown option {sorted(unknown)[0]}; options: {', '.join(sorted(known))}")
        if not rest or "--list" in flags:
            if "--list" not in flags:
                print(USAGE)
            print(list_recipes())
            return 0
        if "--help" in flags:
            print(recipe_help(rest[0]))
            return 0
        return execute(rest[0], rest[1:], dry_run="--dry-run" in flags, force="--force" in flags)
    except XlingError as e:
        print_error(str(e))
        return 2
    except KeyboardInterrupt:
        print_error("interrupted; finished work is kept in the run folder, run the same command to resume")
        return 130
