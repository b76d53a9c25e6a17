"""The command line behind run.py: resolve a recipe, prepare its run folder, run its task."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from xling.common.config import (
    Recipe,
    available_recipes,
    build,
    describe_keys,
    dump_yaml,
    merge,
    parse_overrides,
    read_recipe_file,
    recipe_path,
    to_dict,
)
from xling.common.console import console, print_error
from xling.common.errors import ConfigError, InterruptReported, Unfinished, XlingError
from xling.common.io import atomic_write_bytes, atomic_write_json
from xling.runs.folder import (
    ASIDE,
    FINGERPRINT,
    FINISHED,
    PREVIOUS,
    check_run_dir,
    default_out,
    forcing,
    has_work,
    open_run_dir,
    prepare_run_dir,
    recipe_fingerprint,
    remove_temporaries,
    restore_results,
)
from xling.runs.lock import FolderLock, is_main_process
from xling.runs.registry import load_task

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
    with forcing(force):
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
    for key, tp, default, meaning in rows:
        set_here = _lookup(data, key)
        shown = f"{set_here!r} (recipe)" if set_here is not _MISSING else default
        lines.append(help_line(key, width, meaning, tp, shown))
    return "\n".join(lines)


_MISSING = object()


def help_line(key: str, width: int, meaning: str, tp: str, shown: str) -> str:
    """One key of `--help`: its name, what it means (the comment beside its field), its type and its value."""
    return f"  {key.ljust(width)}  {meaning or '(no description)'} — {tp}; default {shown}"


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
    except KeyboardInterrupt as e:
        if not isinstance(e, InterruptReported):  # a stage that stopped has said so already
            print_error(INTERRUPTED)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`... --help | head`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


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
