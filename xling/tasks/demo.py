"""Task `demo`: the classroom demo — a parallel-scaling study in a toy world, on a CPU, in minutes.

    python run.py demo                       # the toy world: pretrain (cached), 4 GRPO runs, evaluation, analysis
    python run.py demo model=NAME            # the same pipeline on any causal LM (hub id, folder, GGUF file)

Phases: (1) the base model — `toy` (`xling.models.toy`: a small model pretrained on CPU on the built-in
problems with an English-heavy mixture; cached, so a second run starts from it), or the model given;
(2) a sweep (`xling.studies.sweep`) of GRPO with the paper's rewards on English only and English + 1, 2 and 3
parallel languages (X = 1…4, so that the scaling law can be fitted on X = 2…4), on `synth` training
problems held apart from the evaluation problems; every member and the base evaluated once in all 11
languages with the `hf` backend on `problems` held-out problems per language; (3) the analysis: accuracy, off-target, MTI and Gen per run with bootstrap 95%
intervals, the leap and the scaling fit where the data allow, figures and report.md; for the toy, how
far its one fixable habit (`toy.slip`: boxing the working's first number) fell in the languages each
run trained on and in the others, with paired bootstrap intervals. Then it says in plain words what a
class should look at, and what the numbers show — including when they show nothing beyond the noise.
Seeds are fixed: the same command gives the same numbers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xling.common.config import Invalid, Recipe
from xling.common.console import console
from xling.data.languages import LANGUAGES, parallel_languages, unknown_language_message

# GRPO for every member (synth problems, CPU-sized); `train.*`, `grpo.*`, ... override any of it.
GRPO = {
    "data.source": "synth", "data.n": 160, "data.prefix": True,
    "train.backend": "full", "train.learning_rate": 1e-4, "train.max_steps": 80, "train.questions_per_step": 4,
    "train.batch_size": 32, "train.gradient_checkpointing": False, "train.save_steps": 10,
    "grpo.num_generations": 8, "grpo.temperature": 0.7, "grpo.beta": 0.0,
    "grpo.scale_rewards": "none", "rewards.workers": 0,
}


@dataclass(kw_only=True)
class Config(Recipe):
    model: str = "toy"  # the base model: toy (pretrained here, cached), a hub id, a folder or a GGUF file
    template_from: str | None = None  # a chat template for a model without one (e.g. chatml)
    ks: list[int] = field(default_factory=lambda: [0, 1, 2, 3])  # members: English + k parallel languages (X = k + 1)
    order: list[str] = field(default_factory=lambda: ["ru", "fr", "es", "de", "bn", "th", "zh"])  # the parallel languages, in the order k adds them
    set: dict[str, Any] = field(default_factory=dict)  # overrides of the members' GRPO, e.g. set.train.max_steps=160
    problems: int = 150  # held-out problems per language in the evaluation
    langs: list[str] = field(default_factory=lambda: ["all"])  # languages of the evaluation (all: the 11)
    max_tokens: int = 64  # generated tokens per answer, in GRPO's rollouts and in the evaluation (a real model: 256)
    batch_size: int = 64  # answers generated at once
    n_boot: int = 1000  # bootstrap replicates (paired over items) for every 95% interval
    toy: dict[str, Any] = field(default_factory=dict)  # the toy model's settings (xling.models.toy.ToyConfig), e.g. slip: 0
    plan: dict[str, Any] = field(default_factory=dict)  # what --dry-run's estimates assume (e.g. plan.gpu=h100-80gb)

    def check(self) -> None:
        for code in [*self.order, *[c for c in self.langs if c != "all"]]:
            if code not in LANGUAGES:
                raise Invalid("order" if code in self.order else "langs", unknown_language_message(code))
        if "en" in self.order or len(set(self.order)) != len(self.order):
            raise Invalid("order", "give distinct parallel languages other than en (English is always trained on)")
        if not self.ks or len(set(self.ks)) != len(self.ks):
            raise Invalid("ks", "give distinct numbers of parallel languages, e.g. ks=0,1,3")
        for k in self.ks:
            if not 0 <= k <= len(self.order):
                raise Invalid("ks", f"k={k}: give 0 to {len(self.order)} (the languages in 'order')")
        for key in ("problems", "max_tokens", "batch_size"):
            if getattr(self, key) < 1:
                raise Invalid(key, "must be at least 1")
        from xling.common.checks import BYTES_PER_REPLICATE, n_boot_problem, tokens_problem

        if (problem := tokens_problem(self.max_tokens)) is not None:
            raise Invalid("max_tokens", problem)
        # the habit's intervals draw every problem in each replicate at once (8-byte indices)
        per = BYTES_PER_REPLICATE + 8 * self.problems
        if (problem := n_boot_problem(self.n_boot, per, f": {self.problems} problems drawn")) is not None:
            raise Invalid("n_boot", problem)
        from xling.data import synth
        from xling.studies.overrides import flatten

        if self.problems > synth.HELD_APART:
            raise Invalid("problems", f"at most {synth.HELD_APART}: the toy's pretraining leaves out only the first "
                                      f"{synth.HELD_APART} evaluation problems")
        for key in ("data.k", "model.name"):
            if key in flatten(self.set):
                raise Invalid(f"set.{key}", f"is set by the demo ({'ks=' if key == 'data.k' else 'model='}...); leave it out of set")
        if self.model == "toy":
            self.toy_config()
        else:
            check_model(self.model)
        from xling.studies.sweep import expand

        expand(sweep_config(self, self.model), Path("runs") / "demo")  # every member's GRPO recipe, checked now

    def toy_config(self):
        """The toy model's settings, each checked (an unknown one, a wrong type) under its `toy.` key; shares
        given in `toy.mixture` replace those languages' shares in the default mixture (0 leaves one out)."""
        from xling.common.config import build
        from xling.models.toy import MIXTURE, ToyConfig

        data = dict(self.toy)
        if isinstance(data.get("mixture"), dict):
            data["mixture"] = {**MIXTURE, **data["mixture"]}
        return build(ToyConfig, data, prefix="toy.")

    def base_path(self) -> str:
        """Where the base model is, or will be once built: the toy's cache folder, or the model as given."""
        if self.model == "toy":
            from xling.models.toy import cache_dir

            return str(cache_dir(self.toy_config()))
        return self.model


def check_model(model: str) -> None:
    """A model that is neither an existing file or folder nor a hub id is refused before anything runs."""
    from difflib import get_close_matches

    path = Path(model).expanduser()
    if path.exists():
        return
    if model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") > 1:
        raise Invalid("model", f"no such file or folder: {model}; give a model folder, a .gguf file, a hub id "
                               "(org/name) or toy")
    near = get_close_matches(model, ["toy", "tiny"], n=1, cutoff=0.6)
    if near and "/" not in model:
        raise Invalid("model", f"{model!r} is not a folder here; did you mean {near[0]!r}?")


def member_name(k: int, order: list[str]) -> str:
    return "+".join(parallel_languages(k, order))


def sweep_config(cfg: Config, model: str):
    """The sweep the demo runs: one GRPO member per k, evaluated on held-out synth problems."""
    from xling.common.config import build
    from xling.studies.overrides import flatten
    from xling.tasks.sweep import Config as SweepConfig

    # rollouts as long as the evaluation's answers; a real model's prompts (system turn, chat template) are longer
    common = {**GRPO, "grpo.max_completion_length": cfg.max_tokens,
              "grpo.max_prompt_length": 128 if cfg.model == "toy" else 512,
              **flatten(cfg.set), "model.name": model, "model.template_from": cfg.template_from,
              "data.order": list(cfg.order), "seed": cfg.seed}
    members = {member_name(k, cfg.order): {"data.k": k} for k in cfg.ks}
    evaluate = {"benchmarks": ["synth"], "langs": list(cfg.langs), "limit": cfg.problems, "prefix": True,
                "gen": {"backend": "hf", "max_tokens": cfg.max_tokens, "batch_size": cfg.batch_size, "n": {}},
                "score": {"workers": 0}, "seed": cfg.seed}
    return build(SweepConfig, {
        "task": "sweep", "out": cfg.out, "seed": cfg.seed, "description": "classroom demo",
        "sweep": {"recipe": "grpo-parallel", "set": common, "members": members},
        "evaluate": evaluate, "analyze": {"n_boot": cfg.n_boot, "fit_from": 2, "paper_curve": True},
        # the toy's prompts and answers are short (measured: prompts 47 tokens on average, answers 14)
        "plan": {**({"prompt_tokens": 50, "completion_tokens": 16} if cfg.model == "toy" else {}), **cfg.plan},
    })


def describe_plan(cfg: Config) -> list[str]:
    from xling.tasks import sweep

    model = cfg.model
    if cfg.model == "toy":
        from xling.models.toy import is_built

        if is_built(Path(cfg.base_path())):  # the path the members' recipes will name
            model = cfg.base_path()
            lines = [f"base model: toy, cached in {model}"]
        else:
            lines = ["base model: toy, pretrained on this machine first (about three and a half minutes on 2 cores), then cached"]
    else:
        lines = [f"base model: {cfg.model}"]
    return lines + sweep.describe_plan(sweep_config(cfg, model))


def base_model(cfg: Config) -> str:
    """Phase 1: the base model's path (the toy pretrained here, or a GGUF file converted once) or hub id."""
    if cfg.model == "toy":
        from xling.models.toy import build_toy

        console.rule("phase 1: the toy base model", style="dim")
        return str(build_toy(cfg.toy_config()))
    return cfg.model  # a hub id, a folder or a GGUF file: training and evaluation load it as they are


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.common.versions import numerics
    from xling.tasks import sweep

    t0 = time.monotonic()
    computed = numerics()
    console.print(f"numbers computed with: {computed} (a machine that prints the same line gets the same numbers)",
                  markup=False, soft_wrap=True)
    model = base_model(cfg)
    console.rule("phase 2: GRPO on English + k parallel languages, and the evaluation of every model", style="dim")
    metrics = sweep.run(sweep_config(cfg, model), run_dir)
    from xling.common.console import print_table
    from xling.common.io import atomic_write_text
    from xling.report.results import md_table

    taught = cfg.model == "toy" and cfg.toy_config().slip > 0  # the toy was pretrained with the habit
    items = habit_items(run_dir, list(metrics["comparisons"])) if taught else {}
    habit = {name: {l: round(100 * sum(v.values()) / len(v), 1) for l, v in per_lang.items()}
             for name, per_lang in items.items()}
    lines = explain(metrics, cfg, items, item_scores(run_dir / "items.jsonl"))
    wall = time.monotonic() - t0
    console.rule("what to look at", style="dim")
    extra = ""
    if habit:
        langs = [l for l in LANGUAGES if l in next(iter(habit.values()))]  # the table's language order
        rows = [[name, *[f"{v[l]:.1f}" for l in langs]] for name, v in habit.items()]
        print_table("the toy's habit: answers that box the first number of their working (%)", ["model", *langs], rows)
        figure = habit_figure(items, langs, run_dir / "figures" / "habit.png", cfg.n_boot, cfg.seed)
        extra = ("\n## The toy's habit\n\nAnswers that box the first number of their working instead of its "
                 "result (% of the answers):\n\n" + md_table(["model", *langs], rows)
                 + f"\n\n![the toy's habit](figures/{figure.name})\n")
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)
    console.print(f"demo wall time: {wall:.0f} s", markup=False)
    report = run_dir / "report.md"  # the analysis wrote it afresh: what to look at goes first, under a title of its own
    text = report.read_text(encoding="utf-8") if report.is_file() else ""
    rest = text.split("\n", 1)[1] if text.startswith("# ") else text
    title = "# Classroom demo" + (": a toy world" if cfg.model == "toy" else f": {cfg.model}")
    atomic_write_text(report, f"{title}\n\n## What to look at\n\n" + as_markdown(lines) + "\n" + extra + rest)
    files = dict(metrics.get("files") or {})
    if habit:
        files["habit_figure"] = str(figure)
    return {**metrics, "files": files, "demo": {"model": cfg.model, "model_path": model, "wall_s": round(wall, 1),
                                                "numerics": computed, "habit": habit, "explanation": lines}}


def as_markdown(lines: list[str]) -> str:
    """What to look at in Markdown: numbered points, their indented lines as sub-items, the rest paragraphs."""
    out = []
    for line in lines:
        if line.startswith("   "):
            out.append("   - " + line.strip())
        elif line[:1].isdigit():
            out.append(line)
        else:
            out += ["", line, ""]
    return "\n".join(out).strip("\n") + "\n"


def habit_items(run_dir: Path, names: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    """The toy's one habit that rewards can fix (`toy.slip`): per model, language and problem, 1 where the
    answer is wrong because it boxed the first number of its working instead of its result. Read from each
    evaluation's scored items (what the grader extracted) and the completions they scored."""
    import json
    import re

    from xling.generate.completions import read_shard

    out: dict[str, dict[str, dict[str, int]]] = {}
    folders = {"base": run_dir / "bases" / "base"} | {n: run_dir / "members" / n / "eval" for n in names}
    for name, folder in folders.items():
        for scored in sorted((folder / "scored").glob("*/synth/*.jsonl")):
            completions = run_dir / "completions" / scored.parent.parent.name.rsplit("-", 1)[0] / "synth" / scored.name
            texts = read_shard(completions)
            per_item = {}
            for line in scored.read_text(encoding="utf-8").splitlines():
                r = json.loads(line)
                text = (texts.get((r["id"], 0)) or {}).get("text")
                if text is not None:
                    first = re.search(r"\d+", text)
                    per_item[r["id"]] = int(bool(first and r.get("extracted") == first.group(0) and not r.get("correct")))
            if per_item:
                out.setdefault(name, {})[scored.stem] = per_item
    return out


def item_scores(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Each model's score per language and problem (the synth benchmark's), from the study's items.jsonl."""
    import json

    out: dict[str, dict[str, dict[str, float]]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r.get("benchmark", "synth") == "synth" and r.get("score") is not None:
                out.setdefault(r["model"], {}).setdefault(r["lang"], {})[r["id"]] = float(r["score"])
    return out


def habit_figure(items: dict, langs: list[str], path: Path, n_boot: int, seed: int) -> Path:
    """The habit's share per language and model as grouped bars, with per-cell bootstrap 95% intervals."""
    from types import SimpleNamespace

    import numpy as np

    from xling.report.results import plot_bars

    rng = np.random.default_rng(seed)
    values, cis = {}, {}
    for name, per_lang in items.items():
        values[name], cis[name] = {"synth": {}}, {"synth": {}}
        for l in langs:
            x = np.array(list(per_lang.get(l, {}).values()), dtype=float)
            if not len(x):
                values[name]["synth"][l] = None
                continue
            boots = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
            values[name]["synth"][l] = 100 * x.mean()
            cis[name]["synth"][l] = [100 * float(b) for b in np.percentile(boots, [2.5, 97.5])]
    models = list(items)
    return plot_bars(SimpleNamespace(models=models, langs={"synth": langs}), values, cis, path,
                     "answers with the habit (%)", "The toy's habit: answers that box the first number of their "
                     "working instead of its result (error bars: bootstrap 95% CI)", models, "base")


def habit_change(items: dict, model: str, langs: list[str], n_boot: int, seed: int) -> dict | None:
    """The habit's share (%) in `langs` for the base and `model`, and the change with a paired bootstrap 95%
    interval (problems resampled, each with all of its languages, as the other intervals are)."""
    import numpy as np

    langs = [l for l in langs if l in items.get("base", {}) and l in items.get(model, {})]
    if not langs:
        return None
    ids = sorted(set.intersection(*[set(items["base"][l]) & set(items[model][l]) for l in langs]))
    if not ids:
        return None
    base = np.array([[items["base"][l][i] for l in langs] for i in ids], dtype=float)
    run = np.array([[items[model][l][i] for l in langs] for i in ids], dtype=float)
    diff = (run - base).mean(axis=1)
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(ids), size=(n_boot, len(ids)))].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"base": round(100 * base.mean(), 1), "run": round(100 * run.mean(), 1),
            "change": round(100 * diff.mean(), 1), "ci": [round(100 * lo, 1), round(100 * hi, 1)]}


def _reading_beta(ci) -> str:
    """What the fitted exponent's interval says about MTI across X, in words."""
    if not ci or ci[0] is None:
        return ""
    if not all(map(math.isfinite, ci)):
        return " β's interval is unbounded: the data do not determine the curve."
    sign = _excludes_zero(ci)
    return (" β's interval is above 0: MTI rises with the number of training languages, beyond the noise."
            if sign > 0 else
            " β's interval is below 0: MTI falls as training languages are added, beyond the noise." if sign < 0 else
            " β's interval includes 0: these points cannot tell a rising curve from a flat one.")


def _excludes_zero(ci) -> int:
    """+1 / -1 when a 95% interval lies wholly above / below 0, else 0."""
    if not ci or ci[0] is None:
        return 0
    return 1 if ci[0] > 0 else -1 if ci[1] < 0 else 0


def explain(m: dict, cfg: Config, habit: dict | None = None, scores: dict | None = None) -> list[str]:
    """What a class should look at, and what these numbers say (computed from them, not assumed). `scores`
    (model -> language -> problem -> score) adds each run's accuracy change in the languages it trained
    on and in the others, with paired bootstrap intervals."""
    acc = m["accuracy"]
    base = next(iter({r["base"] for r in m["comparisons"].values()}))
    cells = {l: v for per_b in acc[base].values() for l, v in per_b.items()}
    top, bottom = max(cells.values()), min(cells.values())
    best = " and ".join(l for l, v in cells.items() if v == top)
    worst = " and ".join(l for l, v in cells.items() if v == bottom)
    n = cfg.problems
    width = 196 * (0.25 / n) ** 0.5  # the half-width of a 95% interval of an accuracy near 50%, in points
    out = [("This is a toy world: a small model pretrained here on arithmetic word problems, not a real LLM. "
            if cfg.model == "toy" else f"Model {cfg.model}. ")
           + f"{n} held-out problems per language: an accuracy's 95% interval is up to about ±{width:.0f} points.",
           f"1. The base model: accuracy per language (figures/accuracy.png). It is best in {best} "
           f"({top:.1f}%) and worst in {worst} ({bottom:.1f}%)"
           + ((": its pretraining was English-heavy, as real models' is." if best == "en" else
               ", although its pretraining was English-heavy.") if cfg.model == "toy" else ".")]
    out.append("2. Each GRPO run against the base (table 'members'): Gen is the share of the base's errors fixed "
               "(in %), MTI how much the languages it did not train on gained, relative to those it trained on "
               "(a ratio of gains: when the trained languages barely moved, it swings widely, and its interval "
               "says by how much).")
    rose = []  # runs whose accuracy rose beyond the noise in the languages they did not train on
    for name, r in m["comparisons"].items():
        gen, gen_ci = m["gen_avg"].get(name), (m.get("gen_avg_ci") or {}).get(name)
        mti, mti_ci = r["mti"]["avg"], ((r.get("ci") or {}).get("mti") or {}).get("avg")
        sign = _excludes_zero(gen_ci)
        verdict = ("it fixed errors beyond the noise" if sign > 0 else "it made things worse beyond the noise"
                   if sign < 0 else "its change is within the noise (Gen's interval includes 0)")
        mti_text = "MTI undefined" if mti is None else f"MTI {mti:.2f}" + (
            f" [{mti_ci[0]:.2f}, {mti_ci[1]:.2f}]" if mti_ci and mti_ci[0] is not None else "")
        gen_text = "Gen undefined" if gen is None else f"Gen {gen:.2f}" + (
            f" [{gen_ci[0]:.2f}, {gen_ci[1]:.2f}]" if gen_ci and gen_ci[0] is not None else "")
        moved = ""
        if scores and "base" in scores:
            seen = habit_change(scores, name, r["train_langs"], cfg.n_boot, cfg.seed)
            unseen = habit_change(scores, name, [l for l in scores.get(name, {}) if l not in r["train_langs"]],
                                  cfg.n_boot, cfg.seed)
            moved = "".join(f"; accuracy in {label} {c['base']:.1f}% -> {c['run']:.1f}% ({c['change']:+.1f} points "
                            f"[{c['ci'][0]:+.1f}, {c['ci'][1]:+.1f}])"
                            for label, c in (("the trained languages", seen), ("the others", unseen)) if c)
            if unseen and _excludes_zero(unseen["ci"]) > 0:
                rose.append(name)
        out.append(f"   {name} (trained on {', '.join(r['train_langs'])}): {gen_text}, {mti_text}{moved}: {verdict}.")
    sc = (m.get("scaling") or {}).get("mti") or {}
    if sc.get("leap") is not None:
        ci = (sc.get("ci") or {}).get("leap")
        sign = _excludes_zero(ci)
        out.append(f"3. The First-Parallel Leap (figures/scaling.png): MTI with one parallel language minus English "
                   f"only = {sc['leap']:+.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "") + (
                       ": the first parallel language helped transfer, beyond the noise." if sign > 0 else
                       ": it hurt transfer, beyond the noise." if sign < 0 else
                       ": within the noise here, so this run does not show the leap the paper reports "
                       "(MTI 1.163 -> 2.496, +1.333, on a 7B model)."))
    if sc.get("note"):
        out.append(f"   Scaling fit: {sc['note']}.")
    elif sc.get("alpha") is not None:
        from xling.report.study import bounded_ci

        ci = dict(sc.get("ci") or {})
        ci.update({k: bounded_ci(ci.get(k), sc) for k in ("alpha", "gap")})

        def interval(key):
            return f" [{ci[key][0]:.2f}, {ci[key][1]:.2f}]" if ci.get(key) and ci[key][0] is not None else ""

        gap = ("" if sc.get("gap") is None else
               f"; the Monolingual Generalization Gap f(1) - MTI(English only) = {sc['gap']:+.2f}{interval('gap')}")
        out.append(f"   Scaling fit (figures/scaling.png): MTI = {sc['alpha']:.2f}·X^{sc['beta']:.2f} on X = "
                   f"{', '.join(str(x) for x in sc['x'] if x >= 2)} (α{interval('alpha')}, β{interval('beta')}, "
                   f"R² {sc['r2']:.2f}){gap}. The paper's: 2.00·X^0.29, with a gap of 2.00 - 1.16 = +0.84."
                   + (" Here the points scatter around the curve (R² below 0.5): the data do not determine it."
                      if sc["r2"] is not None and sc["r2"] < 0.5 else "")
                   + _reading_beta(ci.get("beta")))
    carried = []  # runs whose habit fell beyond the noise in the languages they did not train on
    if habit and "base" in habit:
        out.append("4. The toy's one habit that the rewards can fix (figures/habit.png): boxing the first number "
                   "of the working instead of its result. Where it fell in the languages a run did not train on, what "
                   "the run learned there carried over to them.")
        for name, r in m["comparisons"].items():
            seen = habit_change(habit, name, r["train_langs"], cfg.n_boot, cfg.seed)
            unseen = habit_change(habit, name, [l for l in habit.get(name, {}) if l not in r["train_langs"]],
                                  cfg.n_boot, cfg.seed)
            parts = [f"{label} {c['base']:.1f}% -> {c['run']:.1f}% ({c['change']:+.1f} [{c['ci'][0]:+.1f}, {c['ci'][1]:+.1f}])"
                     for label, c in (("trained languages", seen), ("the other languages", unseen)) if c]
            if parts:
                out.append(f"   {name}: " + ", ".join(parts) + ".")
            if unseen and _excludes_zero(unseen["ci"]) < 0:
                carried.append(name)
    from xling.analysis.summary import MIN_JUDGED

    off = m.get("off_target") or {}
    cells = [v for per_b in off.values() for per_l in per_b.values() for v in per_l.values()]
    decided = [v for v in cells if v is not None]
    judged = m.get("mean_off_target_judged") or {}

    def count(name):  # the answers a model's mean rests on, where known
        return f" (n={judged[name]:,})" if name in judged else ""

    if cells and len(decided) < 0.8 * len(cells):
        out.append(f"5. Off-target (figures/off_target.png): the language identifier judged at least {MIN_JUDGED} "
                   f"answers in only {len(decided)} of {len(cells)} cells (model x language); the others are "
                   "undetermined (most answers are too short for it), so these rates say little here.")
    elif decided:
        means = {name: [v for per_l in per_b.values() for v in per_l.values() if v is not None]
                 for name, per_b in off.items()}
        out.append("5. Off-target (figures/off_target.png), answers not in the requested language, mean over the "
                   f"languages with at least {MIN_JUDGED} judged answers (n: the answers judged): "
                   + ", ".join(f"{name} {sum(v) / len(v):.1f}%{count(name)}" for name, v in means.items() if v) + ".")
    moved = [n for n, r in m["comparisons"].items() if _excludes_zero((m.get("gen_avg_ci") or {}).get(n))]
    if moved:
        says = f"What these numbers show: {', '.join(moved)} changed accuracy beyond its 95% interval (Gen above)"
    else:
        says = "What these numbers show: no training run changed accuracy beyond its 95% interval"
    if rose and rose == carried:
        says += (f"; in the languages never trained on, accuracy rose and the habit fell beyond the noise after "
                 f"{', '.join(rose)}: what GRPO taught carried across languages.")
    elif rose or carried:
        if rose:
            says += f"; accuracy rose beyond the noise in languages never trained on after {', '.join(rose)}"
        if carried:
            says += (f"; the habit fell beyond the noise in languages never trained on after {', '.join(carried)}: "
                     "what GRPO taught carried across languages")
            lagging = [n for n in carried if n not in rose]
            says += ("." if not lagging else
                     f", even where accuracy there moved less ({', '.join(lagging)}: the toy's other errors are "
                     "arithmetic facts, which one language's training does not teach another's problems).")
        else:
            says += "."
    elif not moved:
        says += (", so no transfer can be read from them. That is a finding too: try more steps "
                 "(set.train.max_steps=160) or more problems (problems=300).")
    else:
        says += "."
    out.append(says)
    return out
