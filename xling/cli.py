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
from .errors import ConfigError, Unfinished, XlingError
from .io import atomic_write_bytes, atomic_write_json, atomic_write_text, cannot_write, is_temporary
from .lock import LOCK_NAME, FolderLock, is_main_process
from .tasks import load_task

USAGE = """\
usage: python run.py RECIPE [key.sub=value ...] [--dry-run] [--force]
       python run.py --list
       python run.py RECIPE --help|-h   (the recipe's keys, types and defaults)

RECIPE is a name under recipes/ (without .yaml) or a path to a YAML file.
Lists are written a,b or [a,b]. Results go to the run folder (out=DIR, default runs/RECIPE...).
  --dry-run   print the fully resolved recipe (and a sweep's members, a training run's plan) and run nothing
  --force     run again even if the run folder holds a finished run
  --only=A,B  a sweep: run these members only
"""

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
    if "out" in over and isinstance(over["out"], str) and not over["out"].strip():
        raise ConfigError("out= is empty; give the run folder as out=DIR, or leave out= off for runs/RECIPE")
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
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "packages": versions,
    }


def recipe_fingerprint(cfg_dict: dict) -> str:
    """A short hash of everything in a recipe that a run's results depend on (not out, not description)."""
    text = json.dumps(_comparable(cfg_dict), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


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
            old, new = _comparable(old_full, resumable), _comparable(new_full, resumable)
            if old != new and has_work(run_dir):
                changed = ", ".join(_changed_keys(old, new)[:6]) if old_full else f"{saved} cannot be read"
                raise XlingError(
                    f"{run_dir} holds work of a different recipe (differs in: {changed}); give another out=DIR, "
                    "or add --force to run there anyway (the task reuses what is still valid)"
                )
        # a marker written before markers named their recipe: recipe.yaml says what it finished
        legacy = done == "" and bool(old_full) and _comparable(old_full) == _comparable(new_full)
        if done == recipe_fingerprint(new_full) or legacy:
            return False
        if done and old_full and done == recipe_fingerprint(old_full):
            changed = _changed_keys(_comparable(old_full), _comparable(new_full))
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


def execute(name: str, overrides: list[str], dry_run: bool = False, force: bool = False) -> int:
    cfg, path = resolve(name, overrides)
    task = load_task(cfg.task)
    resumable = frozenset(getattr(task, "RESUMABLE", ()))
    if cfg.out is None:
        cfg.out = str(default_out(path, overrides, resumable))
    elif not str(cfg.out).strip():
        raise ConfigError(f"recipe {path}: out is empty; give the run folder as out=DIR, or leave it null")
    if dry_run:
        check_run_dir(Path(cfg.out))
        console.print(dump_yaml(cfg), end="", markup=False, highlight=False)
        describe = getattr(task, "describe_plan", None)
        if describe is not None:  # as YAML comments: the output stays a valid recipe
            for line in describe(cfg):
                console.print(f"# {line}".rstrip(), markup=False, highlight=False, soft_wrap=True)
        return 0
    run_dir = Path(cfg.out)
    created = [p for p in [run_dir, *run_dir.parents] if not p.exists() and not p.is_symlink()]
    open_run_dir(run_dir)
    _forced.append(force)
    refused_here = False
    try:
        if not is_main_process():  # the other ranks of a distributed launch work beside the main one
            return _run_in(cfg, path, task, run_dir, force, resumable)
        with FolderLock(run_dir) as lock:
            if lock.took_over:
                console.print(f"note: the last run in {run_dir} (pid {lock.took_over.get('pid')} on "
                              f"{lock.took_over.get('host')}) stopped before its end",
                              markup=False)
            remove_temporaries(run_dir)
            try:
                return _run_in(cfg, path, task, run_dir, force, resumable)
            except XlingError:
                if created and not has_work(run_dir):  # refused in a folder it made: its bookkeeping goes
                    refused_here = True
                    for name in ("recipe.yaml", "env.json"):
                        (run_dir / name).unlink(missing_ok=True)
                raise
    except XlingError:
        if refused_here:  # and the folders it made, once the lock is released, where nothing else is in them
            for p in created:
                try:
                    p.rmdir()
                except OSError:
                    break
        raise
    finally:
        _forced.pop()


def _run_in(cfg: Recipe, path: Path, task, run_dir: Path, force: bool, resumable: frozenset[str]) -> int:
    finished = run_dir / FINISHED
    for marker in (finished, run_dir / PREVIOUS):
        if (marker.exists() or marker.is_symlink()) and (marker.is_symlink() or not marker.is_file()):
            raise XlingError(f"{marker} is not a file (the finished marker of this folder is written there); "
                             "move it aside, then run the same command again")
    # What a forced re-run of a finished run replaces, kept until the task has accepted its input.
    previous = {n: (run_dir / n).read_bytes() for n in ("recipe.yaml", "env.json", FINISHED)
                if finished.exists() and (run_dir / n).is_file()}
    # A task that reports on the machine (doctor) is worth running every time.
    if not prepare_run_dir(cfg, run_dir, force or getattr(task, "ALWAYS_RUN", False), resumable):
        console.print(
            f"{run_dir} already holds this finished run (see {finished}); add --force to run it again",
            markup=False,
        )
        return 0
    console.print(f"[bold]{path.stem}[/] ({cfg.task}) -> {run_dir}/", highlight=False)
    try:
        metrics = task.run(cfg, run_dir)
    except Unfinished as e:
        console.print(str(e), markup=False, highlight=False)
        return 0
    except XlingError:
        if previous:  # refused input: the finished run stays as it was
            for n, data in previous.items():
                atomic_write_bytes(run_dir / n, data)
            (run_dir / PREVIOUS).unlink(missing_ok=True)
            restore_results(run_dir)
        raise
    # the marker names the recipe it finished: a later run of another recipe never takes it for its own
    record = {**(metrics if metrics is not None else {}), FINGERPRINT: recipe_fingerprint(to_dict(cfg))}
    atomic_write_json(finished, record)
    (run_dir / PREVIOUS).unlink(missing_ok=True)
    import shutil

    shutil.rmtree(run_dir / ASIDE, ignore_errors=True)  # the results of the run this one replaced
    console.print(f"results: {finished}", markup=False, highlight=False)
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


def _check_only(name: str, given: str, known: set[str]) -> None:
    """--only is an option of the recipes that take it (sweeps): elsewhere an unknown option."""
    from dataclasses import fields

    task_name = read_recipe_file(recipe_path(name)).get("task")
    if not task_name:
        return  # resolve() says what is wrong with the recipe
    if "only" not in {f.name for f in fields(load_task(str(task_name)).Config)}:
        others = ", ".join(sorted(known - {"--only"}))
        raise ConfigError(f"unknown option {given} for recipe {name} (task {task_name}): --only picks the members of "
                          f"a sweep; options here: {others}")


def main(argv: list[str] | None = None) -> int:
    args = ["--help" if a == "-h" else a for a in (sys.argv[1:] if argv is None else argv)]
    flags = {a for a in args if a.startswith("--")}
    rest = [a for a in args if not a.startswith("--")]
    known = {"--list", "--dry-run", "--force", "--help", "--only"}
    try:
        only = [a for a in flags if a.split("=", 1)[0] == "--only"]
        if only:
            flags -= set(only)
            value = only[-1].partition("=")[2]
            if not value:
                raise ConfigError("--only needs member names: --only=k0,k3")
            if rest:
                _check_only(rest[0], only[-1], known)
            rest.append(f"only={value}")
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
        print_error(INTERRUPTED)
        return 130


INTERRUPTED = "interrupted; finished work is kept in the run folder, run the same command to resume"


def _interrupted_at_exit(signum, frame) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    print_error(INTERRUPTED)
    try:
        sys.stderr.flush()
    finally:
        os._exit(130)


def exit_with(code: int) -> None:
    """sys.exit(code), where a Ctrl-C while the libraries shut down (their exit handlers, worker processes
    joined) is one line and exit 130, not a KeyboardInterrupt traceback after an exit code of 0."""
    import signal

    try:
        signal.signal(signal.SIGINT, _interrupted_at_exit)
    except ValueError:  # not the main thread
        pass
    sys.exit(code)
