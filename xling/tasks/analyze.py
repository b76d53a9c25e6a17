"""Task `analyze`: one analysis across finished evaluations, or an accuracy table (the sweeps' aggregate stage).

    python run.py analyze evals=runs/a,runs/b [models=members.csv | base=NAME train_langs=en]
    python run.py analyze table=runs/paper-replay/accuracy.csv          (its models.csv is read too)
    python run.py analyze table=acc.csv items=items.jsonl base=base members='[{name: k1, base: base, train_langs: [en, ru]}]'

Sources: evaluation run folders (`evals=`: their items.jsonl and metrics.json), or an accuracy table
(`table=`) with, optionally, its per-item results (`items=`). Without per-item results there are no
intervals and no off-target rates. Members — which trained model is compared with which base, its
training languages, its X on the scaling curve and its paradigm — come from `members=` (inline), a
members file (`models=`, the models.csv that evaluations, sweeps and paper-replay write; one next
to the table or in an evaluation folder is read by default), the evaluations' own metadata, or
`base=` (every other model compared with it, trained on `train_langs`). Everything is computed by
`xling.analysis.study` (rendered by `xling.report.study`): accuracy, off-target, gains, TI, MTI (avg / ID / OOD), Gen, paradigm means and,
where members differ in X, the scaling fits, leap and gap — each with paired bootstrap 95% intervals.
Run folder: accuracy.csv, off_target.csv and items.jsonl (merged), models.csv, figures/, report.md,
metrics.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xling.analysis.settings import ScalingSection
from xling.common.config import Invalid, Recipe
from xling.common.console import console
from xling.common.errors import XlingError
from xling.common.io import read_json
from xling.data.languages import LANGUAGES, unknown_language_message


@dataclass
class MemberSpec:
    """A trained model of the study (inline form of a models.csv row)."""

    name: str  # the trained model's name in the results
    base: str  # the name of the model it is compared with (its initial model)
    train_langs: list[str] = field(default_factory=lambda: ["en"])  # languages it was trained on
    x: str = "auto"  # training languages on the scaling curve: auto (len(train_langs)), a number, or none
    paradigm: str | None = None  # how it was trained (RL, SFT, ...): members are grouped by it


@dataclass(kw_only=True)
class Config(ScalingSection, Recipe):
    """Task `analyze`: its sources and members; the analysis settings are `xling.analysis.settings.ScalingSection`'s
    (a sweep's `analyze:` section is the same)."""

    evals: list[str] = field(default_factory=list)  # evaluation run folders (items.jsonl + metrics.json)
    table: str | None = None  # or an accuracy table (model,benchmark,lang,accuracy[,n]) instead of evals
    items: str | None = None  # per-item results for the table's models (for intervals and off-target)
    models: str | None = None  # members file: model,base,train_langs,x,paradigm (default: one found beside the data)
    members: list[MemberSpec] = field(default_factory=list)  # or the members inline: [{name, base, train_langs, x, paradigm}]
    base: str | None = None  # without members: compare every other model with this one
    train_langs: list[str] = field(default_factory=lambda: ["en"])  # without members: the languages those models were trained on
    benchmarks: list[str] = field(default_factory=list)  # restrict to these benchmarks (default: all there are)
    langs: list[str] = field(default_factory=list)  # restrict to these languages (default: all there are)
    title: str = "Study"  # the title of report.md

    def check(self) -> None:
        if not self.evals and not self.table:
            raise Invalid("evals", "give evaluation run folders (evals=runs/a,runs/b) or an accuracy table (table=FILE)")
        if self.evals and (self.table or self.items):
            raise Invalid("table", "give either evals= or table= (with items=), not both")
        if self.items and not self.table:
            raise Invalid("items", "items= goes with table=; evaluation folders bring their own items")
        for key in ("train_langs", "langs"):
            for code in getattr(self, key):
                if code not in LANGUAGES:
                    raise Invalid(key, unknown_language_message(code))
        for i, m in enumerate(self.members):
            for code in m.train_langs:
                if code not in LANGUAGES:
                    raise Invalid(f"members[{i}].train_langs", unknown_language_message(code))
            if not m.train_langs:
                raise Invalid(f"members[{i}].train_langs", "give at least one training language")
            if str(m.x).lower() not in ("auto", "none", "null", "") and not str(m.x).isdigit():
                raise Invalid(f"members[{i}].x", f"'{m.x}': give auto, a number of training languages, or none")
        super().check()


# ------------------------------------------------------------------------------------------ sources


def read_items(path: Path, source: str) -> list[dict]:
    """Per-item records of one file, checked: the fields analysis needs and valid scores."""
    from xling.common.io import read_jsonl

    need = ("model", "benchmark", "lang", "id")
    rows = read_jsonl(path)
    bad = [i for i, r in enumerate(rows, 1) if any(k not in r for k in need) or ("score" not in r and "correct" not in r)]
    if bad:
        raise XlingError(f"{source}: line(s) {bad[:5]} lack one of model, benchmark, lang, id, score|correct")
    for r in rows:
        if "score" not in r:
            r["score"] = float(bool(r["correct"]))
        r.setdefault("n", 1)
    return rows


def load_evals(folders: list[str]) -> tuple[list[dict], list[str], list, list[str]]:
    """Items, model order, members (from each folder's models.csv) and the folders' settings notes."""
    from xling.analysis.members import read_members

    items: list[dict] = []
    owner: dict[str, str] = {}
    order: list[str] = []
    members = []
    for folder in folders:
        d = Path(folder)
        if not d.is_dir():
            raise XlingError(f"evaluation folder {d} does not exist")
        if not (d / "metrics.json").is_file():
            raise XlingError(f"{d} holds no finished evaluation (no metrics.json); run it to the end first "
                             "(the same command resumes it)")
        if not (d / "items.jsonl").is_file():
            raise XlingError(f"{d} has no items.jsonl: is it an evaluation folder (evaluate, observational, a sweep's "
                             "members/NAME/eval)?")
        meta = read_json(d / "metrics.json")
        rows = read_items(d / "items.jsonl", f"{d}/items.jsonl")
        names = list(dict.fromkeys([*(meta.get("models") or {}), *(r["model"] for r in rows)]))
        for name in names:
            if name in owner:
                raise XlingError(f"model '{name}' has results in both {owner[name]} and {d}; evaluate it once, or give "
                                 "one of them another name (name=, base_name=)")
            owner[name] = str(d)
        order += [n for n in names if any(r["model"] == n for r in rows)]
        items += rows
        if (d / "models.csv").is_file() and (d / "models.csv").stat().st_size and _has_rows(d / "models.csv"):
            members += read_members(d / "models.csv")
    return items, order, members, []


def _has_rows(path: Path) -> bool:
    return len([line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]) > 1


def cell_langs(present: dict[str, dict[str, set[str]]], models: list[str], benchmarks: list[str],
               langs: list[str]) -> dict[str, list[str]]:
    """Benchmark -> languages that every model has (restricted to `langs` when given; any gap named)."""
    from xling.data.languages import CODES

    out: dict[str, list[str]] = {}
    all_b = list(dict.fromkeys(b for m in models for b in present.get(m, {})))
    chosen = benchmarks or all_b
    unknown = [b for b in chosen if b not in all_b]
    if unknown:
        raise XlingError(f"no results for benchmark(s) {', '.join(unknown)}; benchmarks here: {', '.join(all_b)}")
    for b in chosen:
        have = [present.get(m, {}).get(b, set()) for m in models]
        union = set().union(*have)
        wanted = [c for c in (langs or CODES) if c in union] if langs else [c for c in CODES if c in union]
        missing = [f"({m}, {b}, {c})" for m, h in zip(models, have) for c in wanted if c not in h]
        if missing:
            raise XlingError(f"no results for {', '.join(missing[:6])}; every model needs every language it is "
                             "compared in (restrict with langs= or benchmarks=)")
        if langs and not wanted:
            raise XlingError(f"benchmark {b} has none of langs={','.join(langs)}")
        out[b] = wanted
    return out


# ------------------------------------------------------------------------------------------ members


def resolve_members(cfg: Config, found: list, models: list[str]) -> list:
    from xling.analysis.members import Member, read_members

    if cfg.members:
        out = []
        for m in cfg.members:
            x = str(m.x).lower()
            out.append(Member.of(m.name, m.base, m.train_langs,
                                 "auto" if x == "auto" else (None if x in ("none", "null", "") else int(x)), m.paradigm))
        return out
    if cfg.models:
        return read_members(cfg.models)
    if found:
        return found
    if cfg.base:
        if cfg.base not in models:
            raise XlingError(f"base '{cfg.base}' has no results here; models: {', '.join(models)}")
        return [Member.of(m, cfg.base, cfg.train_langs) for m in models if m != cfg.base]
    return []


def run(cfg: Config, run_dir: Path, members: list | None = None) -> dict:
    """The analysis of `cfg`'s results. `members` (`xling.analysis.members.Member`s), when a caller that
    planned the study (a sweep) hands them over as data, take the place of `members:`, `models=` or a
    models.csv beside the results."""
    from xling.analysis import members as AM
    from xling.analysis import study as AS
    from xling.report import study as A
    from xling.report import results as R
    from xling.report.table import AccuracyTable, Row, write_table

    items = None
    accuracies = n = None
    found: list = []
    if cfg.evals:
        items, models, found, _ = load_evals(list(cfg.evals))
    else:
        table = AccuracyTable.read(cfg.table)
        models = table.models()
        beside = Path(cfg.table).parent / "models.csv"
        if not cfg.models and beside.is_file() and _has_rows(beside):
            found = AM.read_members(beside)
            console.print(f"members: {beside}", markup=False)
        if cfg.items:
            items = read_items(Path(cfg.items), f"items file {cfg.items}")
            items = [r for r in items if r["model"] in models]
        else:
            accuracies, n = {}, {}
            for r in table.rows:
                accuracies.setdefault(r.model, {}).setdefault(r.benchmark, {})[r.lang] = r.accuracy
                n.setdefault(r.model, {}).setdefault(r.benchmark, {})[r.lang] = r.n
    members = list(members) if members is not None else resolve_members(cfg, found, models)
    listed = list(dict.fromkeys([m.base for m in members] + [m.name for m in members]))
    missing = [name for name in listed if name not in models]
    if missing:
        raise XlingError(f"model '{missing[0]}' is a member or base but has no results here; models with results: "
                         f"{', '.join(models)}")
    models = listed + [m for m in models if m not in listed] if members else models
    present: dict[str, dict[str, set[str]]] = {}
    if items is not None:
        for r in items:
            present.setdefault(r["model"], {}).setdefault(r["benchmark"], set()).add(r["lang"])
    else:
        for m, per_b in accuracies.items():
            present[m] = {b: set(ls) for b, ls in per_b.items()}
    langs = cell_langs(present, models, list(cfg.benchmarks), list(cfg.langs))
    if items is not None:
        items = [r for r in items if r["benchmark"] in langs and r["lang"] in langs[r["benchmark"]]]
    for m in members:
        for b, ls in langs.items():
            absent = [c for c in m.train_langs if c not in ls]
            if absent:
                raise XlingError(f"member '{m.name}' was trained on {', '.join(absent)}, which {b} does not have here; "
                                 "the training-set gain needs every training language (check its train_langs)")
    study = AS.analyze(items, members, langs, models=models, accuracies=accuracies, n=n, seed=cfg.seed,
                       **cfg.options())
    if not members:
        console.print("no members (no base model to compare with): accuracy only; give base=NAME, models=FILE or "
                      "members=[...] for gains, MTI and the scaling fits", markup=False)
    if items is not None:
        files = R.write_outputs(run_dir, items, study.summary)
    else:
        files = {"accuracy": write_table(run_dir / "accuracy.csv",
                                         [Row(m, b, l, study.summary.accuracy[m][b][l], (n.get(m, {}).get(b) or {}).get(l))
                                          for m in models for b, ls in langs.items() for l in ls])}
    if members:
        files["members"] = AM.write_members(run_dir / "models.csv", members)
    A.show(study)
    figures = A.figures(run_dir, study, paper_curve=cfg.paper_curve) if cfg.plots else {}
    sources = [f"evaluations: {', '.join(cfg.evals)}"] if cfg.evals else [f"accuracy table `{cfg.table}`"
                                                                        + (f", items `{cfg.items}`" if cfg.items else "")]
    if items is not None:
        sources.append(f"bootstrap {cfg.n_boot} replicates, paired over items (seed {cfg.seed})")
    else:
        sources.append("no per-item results: point estimates only")
    report = A.write_report(run_dir, study, figures, title=cfg.title, settings=sources)
    console.print(f"report: {report}", markup=False)
    return {"sources": {"evals": list(cfg.evals), "table": cfg.table, "items": cfg.items},
            "langs": langs, **study.as_metrics(),
            "files": {k: str(v) for k, v in {**files, **figures, "report": report}.items()}}
