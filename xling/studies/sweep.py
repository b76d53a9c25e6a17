"""Sweeps: a study as one command — members expanded into run folders, run (resumably) by an executor, then analysed.

A sweep recipe (task `sweep`) names a stage recipe (e.g. `grpo-parallel`) and its members: each a
set of overrides of that recipe (`k3: {data.k: 3}`), or one member per combination of a `product`
over keys. Each member runs its stages — training (which builds its data), then evaluation — in its
own run folder, and one aggregate stage (`xling.tasks.analyze`) analyses them all:

    SWEEP/
      sweep.json                     the expanded plan: members, their overrides, stages and folders
      models/tiny/                   models the sweep builds itself (model.name=tiny)
      bases/NAME/                    each distinct base model, evaluated once for the whole sweep
      members/NAME/train.yaml        a member's resolved training recipe (what `python run.py` runs)
      members/NAME/train/            its training run folder (checkpoints/, final/, metrics.json ...)
      members/NAME/eval.yaml, eval/  its evaluation (no base: the sweep's base evaluation serves all)
      completions/                   one completion cache shared by every evaluation
      models.csv, accuracy.csv, items.jsonl, figures/, report.md, metrics.json   the analysis

Every stage is an ordinary run (`python run.py members/NAME/train.yaml`) in a child process: a
finished stage (its metrics.json, for the same recipe) is skipped, an interrupted one resumes where
it stopped (training from its last checkpoint, evaluation from its completion cache). A member may
start from another member's trained model (`from: sft-de`: its adapter, or its model when trained
with every weight). Executors: `local` (one stage after another), `gpus` (one member per visible
GPU at once), `slurm` (each stage a job through submitit; `sweep.slurm.cluster=local` runs the jobs
as local processes). Members with `train.backend=full` are launched with `accelerate launch`.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from xling.common.config import ROOT, all_keys, build, dump_yaml, merge, read_recipe_file, recipe_path, to_dict
from xling.common.console import console
from xling.common.errors import ConfigError, XlingError

# What `tiny=true` sets: every stage at a size that runs on a CPU in seconds (tiny random model, built-in
# synth problems, two optimizer steps, 24-token answers). It checks the mechanics, not the science.
TINY_TRAIN = {
    "model.name": "tiny", "model.template_from": None, "model.dtype": "auto",
    "data.source": "synth", "data.path": None, "data.hub": None, "data.n": 8, "data.translations": None,
    "train.backend": "peft", "train.learning_rate": 1e-3, "train.max_steps": 2, "train.questions_per_step": 2,
    "train.batch_size": 2, "train.grad_accum": None, "train.precision": "fp32", "train.gradient_checkpointing": False,
    "train.save_steps": 1, "train.save_total_limit": 1,
    "lora.r": 8, "lora.alpha": 16, "lora.targets": ["q_proj", "k_proj", "v_proj", "o_proj"], "lora.qlora": False,
    "vllm.enabled": False, "grpo.num_generations": 4, "grpo.max_completion_length": 24, "grpo.max_prompt_length": 512,
    "rewards.workers": 0, "rewards.min_chars": 1, "sft.max_length": 512,
    "rft.samples": 2, "rft.max_tokens": 24, "rft.generator": "hf", "rft.chunk": 8,
    "pivot.model": "tiny", "pivot.backend": "hf", "pivot.max_tokens": 24, "pivot.keep_truncated": True,
    "pivot.temperature": 1.0,
    "rewards.embedding_model": "tiny",
}
TINY_EVAL = {"benchmarks": ["synth"], "data": {}, "limit": 4, "gen.backend": "hf", "gen.max_tokens": 24,
            "gen.batch_size": 16, "gen.n": {}, "score.workers": 0}
TINY_MODELS = {"tiny": True, "tiny-base": False}  # name -> has a chat template
PARADIGMS = {"train-grpo": "RL", "train-sft": "SFT", "train-rft": "RFT", "pivot-reward": "RL-pivot"}
MEMBER_KEYS = {"recipe", "from", "set", "tiny_set", "x", "paradigm"}


# --------------------------------------------------------------------------------------- overrides


def flatten(tree: Mapping, cls: type | None = None, prefix: str = "") -> dict[str, Any]:
    """{'model': {'name': 'x'}, 'data.k': 1} -> {'model.name': 'x', 'data.k': 1}.

    With `cls` (a task's Config), only sections are walked into: a key whose value is itself a
    mapping (evaluate's `data`, `gen.n`) stays whole. Later keys win.
    """
    import typing
    from dataclasses import is_dataclass

    hints = typing.get_type_hints(cls) if cls is not None and is_dataclass(cls) else {}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        tp = hints.get(str(k))
        if isinstance(v, Mapping) and v and "." not in str(k) and (tp is None and cls is None or
                                                                   tp is not None and is_dataclass(tp)):
            out.update(flatten(v, tp, key + "."))
        else:
            out[key] = v
    return out


def nest(flat: Mapping[str, Any]) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for p in parents:
            child = node.get(p)
            if not isinstance(child, dict):
                child = node[p] = {}
            node = child
        node[last] = value
    return out


def show_value(value: Any) -> str:
    """A value as it would be written after key= on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def task_of(recipe: str, where: str):
    """The task module a recipe (name under recipes/ or a path) runs, and the recipe's data."""
    from xling.runs.registry import load_task

    path = recipe_path(recipe)
    data = read_recipe_file(path)
    task_name = str(data.get("task") or "")
    if not task_name:
        raise ConfigError(f"{where}: recipe {path} has no 'task' key")
    return load_task(task_name), data


def resolve_stage(recipe: str, overrides: Mapping[str, Any], out: Path, where: str):
    """The validated Config of `recipe` with dotted `overrides` and out=`out`; errors name `where`."""
    task, data = task_of(recipe, where)
    flat = dict(overrides)
    if "task" in flat:
        raise ConfigError(f"{where}: 'task' cannot be overridden")
    flat["out"] = str(out)
    try:
        cfg = build(task.Config, merge(data, nest(flat)))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return cfg, task


# Sizes that tiny scale caps: a smaller one given (on the command line, in the sweep's set) is kept
TINY_CAPS = {"limit", "gen.max_tokens", "data.n", "train.max_steps", "train.questions_per_step", "train.batch_size",
            "grpo.num_generations", "grpo.max_completion_length", "rft.samples", "rft.max_tokens", "pivot.max_tokens"}


def tiny_overrides(task_config: type, table: Mapping[str, Any], given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The entries of a tiny-scale table that are keys of this task (a SFT recipe has no grpo.*); a size in
    `given` smaller than the table's stays (tiny scale shrinks a run, never enlarges it)."""
    keys = set(all_keys(task_config))
    given = given or {}
    out = {}
    for k, v in table.items():
        if k not in keys:
            continue
        mine = given.get(k)
        small = (k in TINY_CAPS and isinstance(mine, (int, float)) and not isinstance(mine, bool)
                 and isinstance(v, (int, float)) and 0 < mine < v)
        out[k] = mine if small else v
    return out


# ----------------------------------------------------------------------------------------- the plan


@dataclass
class Stage:
    """One run of the sweep: a member's training or evaluation, or a base model's evaluation."""

    id: str  # "k3/train", "k3/eval", "base:base"
    member: str
    kind: str  # train | eval | base
    recipe: str  # the recipe it was resolved from (for display)
    overrides: dict[str, Any]  # the overrides that make it (for display)
    cfg: Any
    run_dir: Path
    file: Path  # the resolved recipe that `python run.py FILE` runs
    needs: list[str] = field(default_factory=list)  # stage ids that must be finished first
    accelerate: bool = False  # full-parameter training: accelerate launch
    conflict: str = ""  # keys in which the folder's recipe differs (state "conflict")
    changed: str = ""  # keys in which the recipe of the folder's finished run differs (resumable ones too)
    force: bool = False  # run with --force: the sweep was, and this stage's recipe changed

    def command(self, accelerate_config: str | None = None, processes: int = 1) -> list[str]:
        run_py = str(ROOT / "run.py")
        if self.accelerate and accelerate_config and processes > 1:  # full-parameter training over several GPUs
            from xling.common.config import shipped_path

            return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                    str(shipped_path(accelerate_config)),
                    "--num_processes", str(processes), run_py, str(self.file), *self.flags()]
        return [sys.executable, run_py, str(self.file), *self.flags()]

    def flags(self) -> list[str]:
        return ["--force"] if self.force else []


@dataclass
class MemberPlan:
    name: str
    recipe: str
    overrides: dict[str, Any]
    train: Stage
    eval: Stage | None
    base: str | None  # the name of its base model's evaluation
    train_langs: list[str]
    x: int | None
    paradigm: str | None
    parent: str | None = None
    tiny_set: dict[str, Any] = field(default_factory=dict)  # its overrides at tiny scale (tiny=true), after the tiny sizes


@dataclass
class Plan:
    dir: Path
    members: list[MemberPlan]
    bases: dict[str, Stage]  # base name -> its evaluation
    models: dict[str, tuple[str, bool]]  # path of a model the sweep builds -> (kind, chat template)

    def stages(self) -> list[Stage]:
        """Every stage in an order that respects `needs`: bases first, then each member's train and eval."""
        out = list(self.bases.values())
        for m in self.members:
            out.append(m.train)
            if m.eval is not None:
                out.append(m.eval)
        return out

    def member(self, name: str) -> MemberPlan:
        return next(m for m in self.members if m.name == name)


def member_specs(sweep) -> list[tuple[str, dict]]:
    """(name, {recipe, from, set, tiny_set, x, paradigm}) for every member, in order."""
    specs: list[tuple[str, dict]] = []
    for name, value in sweep.members.items():
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"sweep.members.{name}: give a mapping of overrides (e.g. {{data.k: 3}}), got {value!r}")
        value = dict(value)
        if "toy_set" in value:
            raise ConfigError(f"sweep.members.{name}: toy_set is now tiny_set (overrides at tiny scale, tiny=true); "
                              "write tiny_set: instead")
        reserved = {k: value.pop(k) for k in list(value) if k in MEMBER_KEYS}
        if "set" in reserved and value:
            raise ConfigError(f"sweep.members.{name}: give its overrides either under set: or directly, not both")
        overrides = reserved.get("set") or value
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"sweep.members.{name}.set: give a mapping of overrides")
        tiny_set = reserved.get("tiny_set") or {}
        if not isinstance(tiny_set, Mapping):
            raise ConfigError(f"sweep.members.{name}.tiny_set: give a mapping of overrides")
        specs.append((str(name), {**reserved, "set": dict(overrides), "tiny_set": dict(tiny_set)}))
    if sweep.product:
        keys = list(sweep.product)
        for key in keys:
            if not isinstance(sweep.product[key], list) or not sweep.product[key]:
                raise ConfigError(f"sweep.product.{key}: give a non-empty list of values")
        for combo in itertools.product(*(sweep.product[k] for k in keys)):
            values = dict(zip(keys, combo))
            specs.append((product_name(sweep.name, values), {"set": values}))
    names = [n for n, _ in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"two members are named '{dupes[0]}'; give sweep.name a pattern that tells them apart, "
                          "e.g. name: 'k{data.k}-r{lora.r}'")
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", n)]
    if bad:
        raise ConfigError(f"member name '{bad[0]}' is not a usable folder name: use letters, digits, '.', '_', '+', '-'")
    if not specs:
        raise ConfigError("the sweep has no members: give sweep.members or sweep.product")
    return specs


def product_name(pattern: str | None, values: Mapping[str, Any]) -> str:
    if pattern:
        def repl(m: re.Match) -> str:
            key = m.group(1)
            if key not in values:
                raise ConfigError(f"sweep.name '{pattern}' names {{{key}}}, which is not a key of sweep.product "
                                  f"({', '.join(values)})")
            return show_value(values[key]).replace(",", "+").strip("[]")
        return re.sub(r"\{([^{}]+)\}", repl, pattern)
    return "-".join(f"{k.split('.')[-1]}{show_value(v).replace(',', '+').strip('[]')}" for k, v in values.items())


def prepared_model(name: str, folder: Path) -> Path | None:
    """Where the sweep builds a model it makes itself (tiny), or None for any other model."""
    if name in TINY_MODELS:
        return (folder / "models" / name).resolve()
    return None


def expand(cfg, sweep_dir: Path) -> Plan:
    """Every stage of the sweep, resolved and validated (nothing runs, nothing is loaded)."""
    from xling.evaluation.models import default_name

    sweep_dir = Path(sweep_dir).resolve()
    s = cfg.sweep
    models: dict[str, tuple[str, bool]] = {}
    members: list[MemberPlan] = []
    base_stages: dict[tuple, str] = {}
    bases: dict[str, Stage] = {}
    specs = member_specs(s)
    derived = {}
    for name, spec in specs:
        recipe = str(spec.get("recipe") or s.recipe)
        folder = sweep_dir / "members" / name
        where = f"member {name} ({recipe})"
        task, _ = task_of(recipe, where)
        overrides = {**flatten(s.set, task.Config), **flatten(spec["set"], task.Config)}
        spec["set"] = flatten(spec["set"], task.Config)
        tiny_set = flatten(spec.get("tiny_set") or {}, task.Config)
        unknown = sorted(set(tiny_set) - set(all_keys(task.Config)))
        if unknown:
            from difflib import get_close_matches

            near = get_close_matches(unknown[0], all_keys(task.Config), n=1)
            raise ConfigError(f"{where}: tiny_set names '{unknown[0]}', which is not a recipe key"
                              + (f"; did you mean '{near[0]}'?" if near else ""))
        if cfg.tiny:  # the tiny sizes, then what this member needs at tiny scale
            overrides = {**overrides, **tiny_overrides(task.Config, TINY_TRAIN, overrides), **tiny_set}
        parent = spec.get("from")
        needs = []
        if parent is not None:
            parent = str(parent)
            done = [m.name for m in members]
            if parent not in done:
                raise ConfigError(f"member {name}: from '{parent}' must name a member listed before it "
                                  f"(members before it: {', '.join(done) or 'none'})")
            p = next(m for m in members if m.name == parent)
            if p.train.cfg.task not in PARADIGMS:
                raise ConfigError(f"member {name}: from '{parent}', which does not train a model")
            final = p.train.run_dir / "final"
            if getattr(p.train.cfg.train, "backend", None) == "full":
                overrides = {**overrides, "model.name": str(final)}
            else:
                overrides = {**overrides, "model.adapter": str(final), "model.name": p.train.cfg.model.name}
            needs.append(p.train.id)
        cfg_train, task = resolve_stage(recipe, overrides, folder / "train", where)
        is_training = cfg_train.task in PARADIGMS
        built = prepared_model(str(cfg_train.model.name), sweep_dir) if is_training else None
        if built is not None:  # a model the sweep builds once for every member (and evaluates once as the base)
            models[str(built)] = (str(cfg_train.model.name), TINY_MODELS[str(cfg_train.model.name)])
            overrides = {**overrides, "model.name": str(built)}
            cfg_train, task = resolve_stage(recipe, overrides, folder / "train", where)
        if not is_training and cfg.evaluate_members:
            raise ConfigError(f"member {name}: recipe {recipe} (task {cfg_train.task}) trains no model; a sweep "
                              "over it needs evaluate_members=false")
        train = Stage(f"{name}/train", name, "train", recipe, overrides, cfg_train, folder / "train",
                      folder / "train.yaml", needs,
                      accelerate=is_training and getattr(cfg_train.train, "backend", None) == "full")
        train_langs, x, paradigm = [], None, None
        ev = None
        base_name = None
        if is_training:
            train_langs = list(cfg_train.data.languages())
            x = spec.get("x", "auto")
            x = len(train_langs) if x == "auto" else (None if x is None else int(x))
            own = PARADIGMS[cfg_train.task]
            paradigm = spec.get("paradigm") or (f"{derived[parent]}→{own}" if parent else own)
            derived[name] = paradigm
        if is_training and cfg.evaluate_members:
            base_model = str(cfg_train.model.name)
            template = cfg_train.model.template_from
            key = (base_model, template)
            if key not in base_stages:
                label = "base" if not base_stages else default_name(base_model)
                base_stages[key] = label
            base_name = base_stages[key]
            final = train.run_dir / "final"
            full = getattr(cfg_train.train, "backend", None) == "full"
            eval_over = {**_eval_common(cfg), "model": str(final) if full else base_model,
                         "adapter": None if full else str(final), "name": name, "train_langs": train_langs,
                         "template_from": template, "paradigm": paradigm, "base": None, "models": [],
                         "cache": str(sweep_dir / "completions"), "plots": False, "n_boot": cfg.analyze.n_boot}
            cfg_eval, _ = resolve_stage(cfg.evaluate_recipe, eval_over, folder / "eval", f"member {name} (evaluation)")
            ev = Stage(f"{name}/eval", name, "eval", cfg.evaluate_recipe, eval_over, cfg_eval, folder / "eval",
                       folder / "eval.yaml", [train.id])
        members.append(MemberPlan(name, recipe, spec["set"], train, ev, base_name, train_langs, x, paradigm, parent,
                                  tiny_set if cfg.tiny else {}))
    if len(base_stages) > 1:  # several bases: name each after its model
        labels: dict[tuple, str] = {}
        for key in base_stages:
            label, k = default_name(key[0]), 2
            while label in labels.values():
                label, k = f"{default_name(key[0])}-{k}", k + 1
            labels[key] = label
        for m in members:
            if m.eval is not None:
                key = (str(m.train.cfg.model.name), m.train.cfg.model.template_from)
                m.base = labels[key]
        base_stages = labels
    for (model, template), label in base_stages.items():
        folder = sweep_dir / "bases" / _folder(label)
        over = {**_eval_common(cfg), "model": model, "adapter": None, "name": label, "train_langs": ["en"],
                "template_from": template, "paradigm": None, "base": None, "models": [],
                "cache": str(sweep_dir / "completions"), "plots": False, "n_boot": cfg.analyze.n_boot}
        cfg_base, _ = resolve_stage(cfg.evaluate_recipe, over, folder, f"base {label} (evaluation)")
        bases[label] = Stage(f"base:{label}", label, "base", cfg.evaluate_recipe, over, cfg_base, folder,
                             sweep_dir / "bases" / f"{_folder(label)}.yaml")
    clash = sorted({m.name for m in members} & set(bases))
    if clash:
        raise ConfigError(f"member '{clash[0]}' has the name of a base model's evaluation; rename the member")
    if len({m.paradigm for m in members if m.paradigm}) < 2 and not any(spec.get("paradigm") for _, spec in specs):
        for m in members:
            m.paradigm = None  # one paradigm for every member: nothing to group by
    for b in bases.values():
        for m in members:
            if m.eval is not None and m.base == b.member:
                m.eval.needs.append(b.id)
    return Plan(sweep_dir, members, bases, models)


def _eval_common(cfg) -> dict[str, Any]:
    task, _ = task_of(cfg.evaluate_recipe, "evaluate_recipe")
    over = flatten(cfg.evaluate, task.Config)
    if cfg.tiny:
        over.update(tiny_overrides(task.Config, TINY_EVAL, over))
    return over


def _folder(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", label).strip("_") or "base"


# ------------------------------------------------------------------------------------------- state


def stage_state(stage: Stage) -> str:
    """done (finished, same recipe), partial (started), todo, or conflict (another recipe's work)."""
    from xling.runs.folder import changed_keys, comparable, finished_fingerprint, has_work, recipe_fingerprint
    from xling.runs.registry import load_task

    d = stage.run_dir
    saved = d / "recipe.yaml"
    if not saved.is_file():
        return "partial" if d.is_dir() and has_work(d) else "todo"
    import yaml

    try:
        old = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return "conflict"
    resumable = frozenset(getattr(load_task(stage.cfg.task), "RESUMABLE", ()))
    new = to_dict(stage.cfg)
    if comparable(old, resumable) != comparable(new, resumable):
        if has_work(d):
            stage.conflict = ", ".join(changed_keys(comparable(old, resumable), comparable(new, resumable))[:5])
            return "conflict"
        return "todo"
    done = finished_fingerprint(d)
    if done == recipe_fingerprint(new):  # the finished marker names exactly this recipe
        return "done"
    if done and done == recipe_fingerprint(old):  # finished for keys that change only an unfinished run
        stage.changed = ", ".join(changed_keys(comparable(old), comparable(new))[:5])
    return "partial"


def write_stage_files(plan: Plan) -> None:
    from xling.common.io import atomic_write_text

    for stage in plan.stages():
        atomic_write_text(stage.file, dump_yaml(stage.cfg))


def build_models(plan: Plan, seed: int) -> None:
    """Build the models the sweep makes itself (tiny), once, atomically."""
    from xling.common.io import WRITE_HINT, build_folder

    for path, (kind, chat) in plan.models.items():
        target = Path(path)
        if (target / "config.json").is_file():
            continue
        from xling.models.tiny import build_tiny_model

        console.print(f"building the {kind} model: {target}", markup=False)
        build_folder(target, lambda tmp: build_tiny_model(tmp, chat_template=chat, seed=seed if chat else seed + 1),
                     hint=WRITE_HINT)


def sweep_record(plan: Plan) -> dict:
    """sweep.json: what the sweep expanded to."""
    def stage(s: Stage | None) -> dict | None:
        if s is None:
            return None
        return {"recipe": s.recipe, "overrides": s.overrides, "run_dir": str(s.run_dir), "file": str(s.file),
                "needs": s.needs, "command": shlex.join(s.command())}
    return {
        "members": {m.name: {"recipe": m.recipe, "overrides": m.overrides, "tiny_set": m.tiny_set, "from": m.parent,
                             "base": m.base, "train_langs": m.train_langs, "x": m.x, "paradigm": m.paradigm,
                             "train": stage(m.train), "eval": stage(m.eval)} for m in plan.members},
        "bases": {name: stage(s) for name, s in plan.bases.items()},
        "models": {p: kind for p, (kind, _) in plan.models.items()},
    }


# ---------------------------------------------------------------------------------------- executors


def _die_with_parent() -> None:
    """In the child: be killed when the sweep process dies (Linux), so a killed sweep leaves no stage running."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def stage_env(gpus: list[str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    return env


class StageFailed(XlingError):
    pass


def _failure(stage: Stage, rc: int, log: Path | None = None) -> StageFailed:
    what = {"train": "training", "eval": "evaluation", "base": "evaluation of the base model"}[stage.kind]
    where = f"; its output is in {log}" if log else "; its message is above"
    cause = f"exit {rc}" if rc >= 0 else f"killed by signal {-rc}"
    return StageFailed(f"{stage.member}: {what} stopped ({cause}){where}. Fix what it says and run the same command "
                       "again: finished stages are kept and the rest resumes")


def run_local(stages: list[Stage], accelerate_config: str | None, processes: int, isolate: bool = True) -> None:
    """One stage after another, whose output goes to the terminal: each in a child process (`isolate`: what
    a GPU wants, so that every stage starts with all of its memory), or in this process (a CPU run, where
    starting the libraries again for every stage would cost more than the stage). Full-parameter stages
    over several GPUs (accelerate launch) always get processes of their own."""
    for i, stage in enumerate(stages, 1):
        console.rule(f"[{i}/{len(stages)}] {stage.id}", style="dim")
        if isolate or (stage.accelerate and accelerate_config and processes > 1):
            proc = subprocess.Popen(stage.command(accelerate_config, processes), env=stage_env(),
                                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            try:
                rc = proc.wait()
            except KeyboardInterrupt:
                proc.wait()
                raise
        else:
            rc = _run_here(stage)
        if rc == 130:
            raise KeyboardInterrupt
        if rc != 0:
            raise _failure(stage, rc)


def _run_here(stage: Stage) -> int:
    """`python run.py FILE` in this process: its exit code (an unexpected crash: 1, with its traceback)."""
    import gc
    import traceback

    from xling.runs.cli import main

    try:
        return main([str(stage.file), *stage.flags()])
    except Exception:  # a bug, not bad input: show it as a child process would, then stop the sweep
        traceback.print_exc()
        return 1
    finally:
        gc.collect()


def visible_gpus(given: list[str]) -> list[str]:
    if given:
        return [str(g) for g in given]
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and env.strip():
        return [g.strip() for g in env.split(",") if g.strip()]
    from xling.common.versions import cuda_available

    if cuda_available():
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    return []


def run_gpus(stages: list[Stage], gpus: list[str], per_stage: int, accelerate_config: str | None,
             done: set[str], poll: float = 0.5) -> None:
    """Stages at once, each on its own `per_stage` GPUs (CUDA_VISIBLE_DEVICES), as soon as what they need is done.

    A stage's output goes to RUN/../NAME.log. A failed stage stops nothing else; the failures are
    reported when no more stage can start.
    """
    if len(gpus) < per_stage:
        raise XlingError(f"sweep.executor=gpus needs {per_stage} GPU(s) per member but sees {len(gpus)} "
                         f"({','.join(gpus) or 'none'}); set CUDA_VISIBLE_DEVICES or sweep.gpus, or use "
                         "sweep.executor=local")
    free = list(gpus)
    waiting = list(stages)
    running: dict[str, tuple[Stage, subprocess.Popen, list[str], Path, float, Any]] = {}
    failed: list[StageFailed] = []
    blocked: set[str] = set()
    while waiting or running:
        for stage in list(waiting):
            if any(n in blocked for n in stage.needs):
                waiting.remove(stage)
                blocked.add(stage.id)
                continue
            if len(free) < per_stage or not all(n in done for n in stage.needs):
                continue
            use, free = free[:per_stage], free[per_stage:]
            log = stage.run_dir.parent / f"{stage.run_dir.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            handle = open(log, "ab")
            proc = subprocess.Popen(stage.command(accelerate_config, per_stage), env=stage_env(use), stdout=handle,
                                    stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            running[stage.id] = (stage, proc, use, log, time.monotonic(), handle)
            waiting.remove(stage)
            console.print(f"{stage.id}: started on GPU {','.join(use)} (log: {log})", markup=False)
        for sid, (stage, proc, use, log, t0, handle) in list(running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            handle.close()
            del running[sid]
            free += use
            minutes = (time.monotonic() - t0) / 60
            if rc == 0:
                done.add(sid)
                console.print(f"{sid}: finished in {minutes:.1f} min", markup=False)
            else:
                blocked.add(sid)
                failed.append(_failure(stage, rc, log))
                console.print(f"{sid}: failed (exit {rc}) after {minutes:.1f} min; see {log}", markup=False)
        if waiting and not running and not any(
                all(n in done for n in s.needs) and not any(n in blocked for n in s.needs) for s in waiting):
            break
        time.sleep(poll)
    if failed:
        raise XlingError(f"{len(failed)} stage(s) failed: " + "; ".join(str(f).split(".")[0] for f in failed)
                         + ". Fix them and run the same command again: finished stages are kept")


def run_slurm(stages: list[Stage], options: Mapping[str, Any], folder: Path, accelerate_config: str | None,
              processes: int, done: set[str]) -> None:
    """Each stage a job through submitit (Slurm, or `cluster: local` for local processes), in waves by `needs`."""
    try:
        import submitit
    except ImportError:
        raise XlingError("sweep.executor=slurm needs submitit (pip install -r requirements.txt)") from None
    options = dict(options)
    cluster = options.pop("cluster", None)
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        executor.update_parameters(**options)
    except (ValueError, NameError, AssertionError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise XlingError(f"sweep.slurm: {first}") from None
    todo = list(stages)
    while todo:
        wave = [s for s in todo if all(n in done for n in s.needs)]
        if not wave:
            raise XlingError(f"stages {', '.join(s.id for s in todo)} wait for stages that did not finish")
        jobs = []
        for stage in wave:
            executor.update_parameters(name=f"xling-{stage.id.replace('/', '-').replace(':', '-')}")
            job = executor.submit(subprocess.run, stage.command(accelerate_config, processes), env=stage_env(),
                                  check=False)
            console.print(f"{stage.id}: submitted as job {job.job_id}", markup=False)
            jobs.append((stage, job))
        failed = []
        for stage, job in jobs:
            try:
                rc = job.result().returncode
            except Exception as e:  # the job itself failed (cancelled, node failure, timeout)
                failed.append(f"{stage.id}: job {job.job_id} failed ({type(e).__name__}); see {folder}")
                continue
            if rc == 0:
                done.add(stage.id)
                console.print(f"{stage.id}: finished (job {job.job_id})", markup=False)
            else:
                failed.append(f"{stage.id}: exit {rc} (job {job.job_id}, log in {folder})")
        if failed:
            raise XlingError("; ".join(failed) + ". Fix them and run the same command again: finished stages are kept")
        todo = [s for s in todo if s not in wave]


