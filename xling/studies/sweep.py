"""Sweeps: a study as one command — members expanded into run folders, run (resumably) by an executor, then analysed.

This module holds the plan: members expanded into stages (`expand`), each stage's state and files;
`xling.studies.overrides` resolves each stage's recipe, `xling.studies.executors` runs the stages.

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
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from xling.common.config import ROOT, all_keys, dump_yaml, to_dict
from xling.common.console import console
from xling.common.errors import ConfigError
from xling.studies.overrides import TINY_EVAL, TINY_TRAIN, flatten, resolve_stage, show_value, task_of, tiny_overrides

TINY_MODELS = {"tiny": True, "tiny-base": False}  # name -> has a chat template
PARADIGMS = {"train-grpo": "RL", "train-sft": "SFT", "train-rft": "RFT", "pivot-reward": "RL-pivot"}
MEMBER_KEYS = {"recipe", "from", "set", "tiny_set", "x", "paradigm"}


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
