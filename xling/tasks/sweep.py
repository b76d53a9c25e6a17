"""Task `sweep`: a study as one command — members trained and evaluated in their own folders, then one analysis.

    python run.py parallel-scaling                   # every member, then the analysis
    python run.py parallel-scaling --only=k0,k3      # these members (and the bases they need) only
    python run.py parallel-scaling --dry-run         # members, their overrides, what is done, the plan
    python run.py parallel-scaling tiny=true         # the same study at tiny scale, on a CPU, in minutes

The machinery is `xling.studies` (the plan in `sweep`, the executors in `executors`); the analysis is
the `analyze` task over the sweep's evaluations, handed the members as data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xling.analysis.settings import ScalingSection
from xling.common.config import Invalid, Recipe, section_check
from xling.common.console import console, print_table
from xling.common.errors import Unfinished, XlingError
from xling.planning.plan import PlanConfig

# Keys that may change between runs of one sweep folder: which members to run and where they run.
RESUMABLE = frozenset({"only", "sweep.executor", "sweep.gpus", "sweep.gpus_per_member", "sweep.slurm", "sweep.isolate",
                       "plan"})


@dataclass
class SweepSection:
    recipe: str = "grpo-parallel"  # the stage recipe every member trains with (a name under recipes/ or a path)
    set: dict[str, Any] = field(default_factory=dict)  # overrides of that recipe for every member
    members: dict[str, Any] = field(default_factory=dict)  # name -> its overrides, or {recipe, from, set, tiny_set,
    # x, paradigm}; tiny_set: what that member needs at tiny scale (tiny=true), set after the tiny sizes
    product: dict[str, Any] = field(default_factory=dict)  # key -> list of values: one member per combination
    name: str | None = None  # product members' names, e.g. 'k{data.k}' (default: key-value joined)
    executor: Literal["local", "gpus", "slurm"] = "local"  # how stages run: local (one after another), gpus (one member per GPU at once), slurm (submitit jobs)
    gpus: list[str] = field(default_factory=list)  # gpus executor: device ids (default: CUDA_VISIBLE_DEVICES, all)
    gpus_per_member: int = 1  # GPUs each stage gets (full-parameter members: accelerate's processes)
    slurm: dict[str, Any] = field(default_factory=dict)  # submitit parameters, e.g. {timeout_min: 600,
    # gpus_per_node: 1, slurm_partition: gpu}; {cluster: local} runs the jobs as local processes
    accelerate_config: str = "recipes/accelerate/zero3.yaml"  # the accelerate launch config of full-parameter members
    isolate: bool | None = None  # local executor: each stage in a child process (null: with a GPU; on a CPU the
    # stages run in the sweep's own process, sparing each the start-up of the libraries)


@dataclass(kw_only=True)
class Config(Recipe):
    RENAMED_KEYS = {"toy": ("tiny", "the tiny random model at tiny scale; model=toy is the pretrained toy world")}

    sweep: SweepSection = field(default_factory=SweepSection)  # the members and how they are run
    evaluate: dict[str, Any] = field(default_factory=dict)  # overrides of the evaluation recipe (benchmarks, langs, gen...)
    evaluate_recipe: str = "evaluate"  # the recipe every evaluation starts from
    evaluate_members: bool = True  # false: members are not training runs (no evaluation, no analysis)
    analyze: ScalingSection = field(default_factory=ScalingSection)  # the analysis of the members' evaluations (as task analyze's keys)
    plan: PlanConfig = field(default_factory=PlanConfig)  # what --dry-run's estimates assume
    tiny: bool = False  # every stage at tiny size on a CPU (tiny random model, synth data, 2 steps): the mechanics only
    only: list[str] = field(default_factory=list)  # run these members only (run.py --only=a,b)

    def check(self) -> None:
        s = self.sweep
        if not s.members and not s.product:
            raise Invalid("sweep.members", "give the members (name: {key: value}) or a sweep.product")
        if s.gpus_per_member < 1:
            raise Invalid("sweep.gpus_per_member", "must be at least 1")
        section_check(self.analyze, "analyze")


def plan_of(cfg: Config):
    from xling.studies.sweep import expand

    return expand(cfg, Path(cfg.out))


def selected(cfg: Config, plan) -> list:
    """The stages to run: every one, or with `only` those of the named members and the bases they need."""
    names = [m.name for m in plan.members]
    if not cfg.only:
        return plan.stages()
    unknown = [n for n in cfg.only if n not in names]
    if unknown:
        from difflib import get_close_matches

        near = get_close_matches(unknown[0], names, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise XlingError(f"--only names '{unknown[0]}', which is not a member{hint}; members: {', '.join(names)}")
    wanted: set[str] = set()
    by_id = {s.id: s for s in plan.stages()}

    def need(sid: str) -> None:
        if sid in wanted:
            return
        wanted.add(sid)
        for n in by_id[sid].needs:
            need(n)

    for m in plan.members:
        if m.name in cfg.only:
            need(m.train.id)
            if m.eval is not None:
                need(m.eval.id)
    return [s for s in plan.stages() if s.id in wanted]


def describe_plan(cfg: Config) -> list[str]:
    """--dry-run: the members, their overrides, what is already done, and the cost of what is left."""
    from xling.studies.overrides import show_value
    from xling.studies.sweep import stage_state

    plan = plan_of(cfg)
    stages = selected(cfg, plan)
    lines = ["", f"sweep {cfg.out}: {len(plan.members)} member(s), {len(plan.bases)} base evaluation(s); "
                 f"executor {cfg.sweep.executor}" + (" (tiny scale)" if cfg.tiny else "")]
    state = {s.id: stage_state(s) for s in plan.stages()}
    for b in plan.bases.values():
        lines.append(f"  base {b.member}: {b.cfg.model}  [{state[b.id]}]")
    for m in plan.members:
        over = " ".join(f"{k}={show_value(v)}" for k, v in m.overrides.items()) or "(the recipe as it is)"
        flag = "" if not cfg.only or m.name in cfg.only else "  (not in --only)"
        lines.append(f"  {m.name}: {m.recipe} {over}{flag}")
        if m.tiny_set:
            lines.append("      at tiny scale also " + " ".join(f"{k}={show_value(v)}" for k, v in m.tiny_set.items()))
        extra = [f"from {m.parent}"] if m.parent else []
        if m.train_langs:
            extra.append(f"train langs {'+'.join(m.train_langs)} (X={m.x if m.x is not None else '-'})")
        if m.paradigm:
            extra.append(m.paradigm)
        if m.base:
            extra.append(f"vs {m.base}")
        lines.append(f"      {'; '.join(extra)}" if extra else "")
        lines.append(f"      train [{state[m.train.id]}] {m.train.run_dir}"
                     + (f"   eval [{state[m.eval.id]}] {m.eval.run_dir}" if m.eval is not None else ""))
    lines = [l for l in lines if l]
    conflicts = [s for s in plan.stages() if state[s.id] == "conflict"]
    for s in conflicts:
        lines.append(f"  ! {s.run_dir} holds work of a different recipe (differs in: {s.conflict}): "
                     "it would be refused without --force")
    todo = [s for s in stages if state[s.id] != "done"]
    lines.append(f"  to run: {len(todo)} of {len(plan.stages())} stage(s)"
                 + (" (--only)" if cfg.only else "") + ("; the analysis runs when every member is done"))
    lines += plan_lines(cfg, plan, [s for s in todo])
    return lines


# Problems per language of each benchmark (for the evaluation plan; nothing is loaded to plan).
BENCHMARK_SIZES = {"mgsm": 250, "msvamp": 1000, "aime24": 30, "aime25": 30, "gpqa": 198, "math500": 500}


def _with_plan(stage_cfg, plan):
    """The stage's config with the sweep's plan settings where the sweep sets them (the stage is not changed)."""
    import copy
    from dataclasses import fields

    from xling.planning.plan import PlanConfig

    c = copy.copy(stage_cfg)
    own = getattr(stage_cfg, "plan", None) or PlanConfig()
    c.plan = PlanConfig(**{f.name: getattr(plan, f.name) if getattr(plan, f.name) != f.default else getattr(own, f.name)
                           for f in fields(PlanConfig)})
    return c


def eval_estimate(stage, plan, model: str | None = None):
    """The plan of one evaluation stage: its prompts counted from the benchmarks' sizes and languages."""
    from xling.planning import plan as P
    from xling.data import synth
    from xling.data import SOURCES
    from xling.data.languages import CODES

    e = stage.cfg
    prompts = samples = 0
    for b in e.benchmarks:
        src = SOURCES.get(b)
        langs = list(src.langs) if src and src.langs else list(CODES)
        if "all" not in e.langs:
            langs = [c for c in e.langs if c in langs]
        size = BENCHMARK_SIZES.get(b, synth.DEFAULT_SIZE)
        n = min(size, e.limit) if e.limit else size
        prompts += n * len(langs)
        samples = max(samples, e.gen.samples(b))
    return P.estimate_evaluation(prompts, samples, e.gen.max_tokens, model or str(e.model), plan.gpu,
                                 completion_tokens=plan.completion_tokens, prompt_tokens=plan.prompt_tokens)


def plan_lines(cfg: Config, plan, todo: list) -> list[str]:
    """The planner's estimate of every stage still to run (one line each), the total and its assumptions."""
    from xling.planning import plan as P

    estimates = []
    lines = ["", "plan (estimates, not measurements; " + (f"for {cfg.plan.gpu}" if cfg.plan.gpu else
                                                          "for the device found here: plan.gpu=h100-80gb plans for "
                                                          "another") + "):"]
    for s in todo:
        if s.kind == "train" and hasattr(s.cfg, "plan"):
            est = P.estimate_training(_with_plan(s.cfg, cfg.plan), cfg.plan.gpu)
        elif s.kind == "eval":  # the trained model has the shape of the model it was trained from
            est = eval_estimate(s, cfg.plan, str(plan.member(s.member).train.cfg.model.name))
        elif s.kind == "base":
            est = eval_estimate(s, cfg.plan)
        else:
            continue
        estimates.append(est)
        lines.append(f"  {s.id}: {est.summary()}")
    if not estimates:
        return []
    total = P.Estimate.total(estimates)
    lines.append(f"  total ({len(estimates)} stages, one after another): {total.summary()}")
    lines.append("  assumptions:")
    seen_set = False
    for a in total.assumptions:
        if a.startswith("training set:"):  # one per member: the first stands for all
            if seen_set:
                continue
            seen_set = True
            a += " (and likewise for each member)"
        lines.append(f"    - {a}")
    lines += [f"  does not fit: {p}" for p in total.problems]
    return lines


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.studies import executors as E
    from xling.studies import sweep as S
    from xling.common.io import atomic_write_json
    from xling.common.versions import cuda_available

    plan = plan_of(cfg)
    stages = selected(cfg, plan)
    state = {s.id: S.stage_state(s) for s in plan.stages()}
    from xling.runs.folder import forced

    changed = [s for s in stages if state[s.id] == "conflict" or s.changed]
    if forced():  # --force: the stages whose recipe changed run again with it, as a stage would, and those after them
        again = {s.id for s in changed}
        for s in plan.stages():  # in an order where a stage comes after those it needs
            if s.id in again or any(n in again for n in s.needs):
                again.add(s.id)
                s.force = True
                if s in stages and state[s.id] == "done":
                    state[s.id] = "partial"
    elif changed:
        s = changed[0]
        if state[s.id] == "conflict":
            raise XlingError(f"{s.run_dir} holds work of a different recipe (differs in: {s.conflict}); add --force to "
                             "re-run the stages whose recipe changed, or give the sweep another out=DIR")
        raise XlingError(f"{s.run_dir} holds a finished run; {s.changed} only take(s) effect while a run is unfinished: "
                         "add --force to re-run the stages whose recipe changed, or give the sweep another out=DIR")
    S.write_stage_files(plan)
    atomic_write_json(run_dir / "sweep.json", S.sweep_record(plan))
    from xling.analysis.members import write_members

    members = study_members(plan)
    if members:
        write_members(run_dir / "models.csv", members)
    done = {sid for sid, st in state.items() if st == "done"}
    todo = [s for s in stages if s.id not in done]
    show_status(plan, state, cfg)
    if todo:
        S.build_models(plan, cfg.seed)
        console.print(f"running {len(todo)} stage(s) with the {cfg.sweep.executor} executor", markup=False)
        if cfg.sweep.executor == "local":
            isolate = cfg.sweep.isolate if cfg.sweep.isolate is not None else cuda_available()
            E.run_local(todo, cfg.sweep.accelerate_config, cfg.sweep.gpus_per_member, isolate)
            done.update(s.id for s in todo)
        elif cfg.sweep.executor == "gpus":
            E.run_gpus(todo, E.visible_gpus(cfg.sweep.gpus), cfg.sweep.gpus_per_member, cfg.sweep.accelerate_config,
                       done)
        else:
            E.run_slurm(todo, cfg.sweep.slurm, run_dir / "slurm", cfg.sweep.accelerate_config,
                        cfg.sweep.gpus_per_member, done)
    missing = [s.id for s in plan.stages() if s.id not in done and S.stage_state(s) != "done"]
    if missing:
        left = sorted({s.member for s in plan.stages() if s.id in missing})
        if cfg.only:
            raise Unfinished(f"--only: {', '.join(cfg.only)} done; {len(left)} more still to run ({', '.join(left)}). "
                             "Run the same command without --only to run them and the analysis.")
        raise XlingError(f"stages not finished: {', '.join(missing)}; run the same command again to resume them")
    if not cfg.evaluate_members:
        return {"members": {m.name: str(m.train.run_dir) for m in plan.members}, "sweep": str(run_dir / "sweep.json")}
    return aggregate(cfg, plan, run_dir)


def show_status(plan, state: dict, cfg: Config) -> None:
    rows = []
    for b in plan.bases.values():
        rows.append([f"base {b.member}", "-", state[b.id]])
    for m in plan.members:
        rows.append([m.name, state[m.train.id], state[m.eval.id] if m.eval is not None else "-"])
    print_table("sweep members (done: finished for this recipe; partial: resumes)", ["member", "train", "eval"], rows)


def study_members(plan) -> list:
    """The evaluated members of the sweep's plan, as the analysis takes them (`xling.analysis.members.Member`)."""
    from xling.analysis.members import Member

    return [Member(m.name, m.base, list(m.train_langs), m.x, m.paradigm or None) for m in plan.members
            if m.eval is not None]


def aggregate(cfg: Config, plan, run_dir: Path) -> dict:
    """The analysis of every evaluation of the sweep (the `analyze` task, written into the sweep folder)."""
    from xling.common.config import build, to_dict
    from xling.tasks import analyze

    evals = [str(b.run_dir) for b in plan.bases.values()] + [str(m.eval.run_dir) for m in plan.members if m.eval]
    acfg = build(analyze.Config, {"task": "analyze", "out": str(run_dir), "seed": cfg.seed, "evals": evals,
                                  **to_dict(cfg.analyze),
                                  "title": f"Sweep {Path(cfg.out).name}: {cfg.description or ''}".rstrip(": ")})
    console.rule("analysis", style="dim")
    metrics = analyze.run(acfg, run_dir, members=study_members(plan))
    metrics["sweep"] = {"members": {m.name: {"train": str(m.train.run_dir), "eval": str(m.eval.run_dir) if m.eval else None,
                                             "overrides": m.overrides, "base": m.base} for m in plan.members},
                        "bases": {n: str(s.run_dir) for n, s in plan.bases.items()}, "tiny": cfg.tiny}
    return metrics
