"""Training sets: which problems, in which languages, built reproducibly and prompted as the paper did.

    spec = TrainData(source="math", n=1000, k=2, build="parallel", translations="~/.cache/xling/translations/M")
    rows, summary = build(spec)           # Examples and counts per language, type and level
    dataset = to_dataset(rows, spec)      # datasets.Dataset in TRL's conversational format
    save(rows, spec, run_dir)             # run_dir/trainset.jsonl + trainset_summary.json

Problem selection (`select_sets`): N problems balanced by type (equal numbers per type as far as
the pool allows) and, within a type, weighted toward higher levels (`level_weights`, default
1:2:3:4:5 for levels 1–5), drawn in a seeded order. The builds:
- `parallel`: the same N problems in every language (English + k languages: N × (k+1) rows);
- `unparallel`: each language gets its own N problems, disjoint from the others' and matched on
  type and level (the paper's parallel-vs-unparallel ablation);
- `mix`: N problems in all, split across the languages, each problem in one language only
  (the ICLR-2026 "RL on a mix of languages" setting).
A problem is only picked for a language that has it. Languages a source lacks come from the
translate stage (`translations=DIR`, the folder `python run.py translate` writes). English
reference answers for the pivot reward come from the pivot stage (`references=DIR`, the folder
`python run.py pivot` writes): each row gets its problem's reference, and a problem without one is
left out (counted in the summary as `no_reference`). A `synth`
training set never holds a problem that repeats, word for word, one of the `test` split's 2,000
(the evaluation problems): the splits are drawn apart, and small templates come up in both.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

from xling.common.config import Invalid
from xling.common.console import console, print_table
from xling.data import Example, SOURCES, load, read_examples
from xling.common.errors import XlingError
from xling.common.io import atomic_write_json, atomic_write_jsonl, read_jsonl
from xling.data.languages import CODES, LANGUAGES, PARALLEL_ORDER, check_codes, parallel_languages, unknown_language_message
from xling.data.prompts import VARIANTS, Variant, build_messages

BUILDS = ("parallel", "unparallel", "mix")
Stratum = tuple[str, int]


@dataclass(kw_only=True)
class TrainData:
    """A training set, as a recipe section (`data.source=math data.k=2 ...`)."""

    source: str = "synth"  # a data source (xling.data.SOURCES)
    path: str | None = None  # a local copy of the source (default: the hub, cached)
    hub: str | None = None  # another hub id for the source
    split: str = "train"  # the source's split the problems come from
    n: int = 1000  # problems per language (parallel, unparallel) or in all (mix)
    langs: list[str] = field(default_factory=lambda: ["en"])  # training languages, in order
    k: int | None = None  # English + the first k languages of the paper's order (overrides langs)
    order: list[str] = field(default_factory=lambda: list(PARALLEL_ORDER))  # the order k takes languages in
    build: Literal["parallel", "unparallel", "mix"] = "parallel"  # parallel: the same problems in every language; unparallel: each its own; mix: split across them
    translations: str | None = None  # folder of <lang>.jsonl from the translate stage
    references: str | None = None  # folder from the pivot stage: an English reference answer per problem
    require_langs: list[str] = field(default_factory=list)  # pick only problems that also exist in these
    level_weights: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0, 5.0])  # selection weights of problem levels 1, 2, ...
    pool: int | None = None  # problems to draw from (default: all; synth: 4 × what the build takes)
    prefix: bool = False  # pre-fill the assistant turn (prompt hacking)
    variant: Variant = "paper"  # prompt wording: paper, paper-user, r1, consistency, bare (xling.data.prompts)
    seed: int = 0  # the seed of the problem selection (which problems, in which order)

    def check(self) -> None:
        from xling.common.checks import seed_problem

        if (problem := seed_problem(self.seed)) is not None:
            raise Invalid("seed", problem)
        if self.source not in SOURCES:
            raise Invalid("source", f"unknown data source '{self.source}'; sources: {', '.join(SOURCES)}")
        if self.n < 1:
            raise Invalid("n", "give a positive number of problems")
        for key in ("langs", "order", "require_langs"):
            for code in getattr(self, key):
                if code not in LANGUAGES and code != "all":
                    raise Invalid(key, unknown_language_message(code))
        if self.k is not None and not 0 <= self.k <= len(self.order):
            raise Invalid("k", f"k={self.k}: give 0 to {len(self.order)} (the languages in 'order')")
        if not self.langs and self.k is None:
            raise Invalid("langs", "give at least one training language, e.g. langs=en")
        if not self.level_weights or any(w < 0 for w in self.level_weights) or not any(self.level_weights):
            raise Invalid("level_weights", "give non-negative weights, one per level from 1 up, not all 0")
        if self.pool is not None and self.pool < self.n:
            raise Invalid("pool", f"pool={self.pool} is smaller than n={self.n}")

    def languages(self) -> tuple[str, ...]:
        """The training languages: English + k of `order` when k is set, else `langs`."""
        if self.k is not None:
            return parallel_languages(self.k, self.order)
        return check_codes(self.langs)


# -- selection ---------------------------------------------------------------------------------

def stratum(ex: Example) -> Stratum:
    """(type, level) of a problem; level 0 when unknown."""
    level = ex.meta.get("level")
    return str(ex.meta.get("type") or "all"), int(level) if isinstance(level, (int, float)) else 0


def allocate(total: int, capacity: dict[Any, int], weight: dict[Any, float]) -> dict[Any, int]:
    """Split `total` over keys in proportion to `weight`, never above `capacity` (largest remainder)."""
    alloc = dict.fromkeys(capacity, 0)
    left = min(total, sum(capacity.values()))
    while left > 0:
        open_ = [k for k in sorted(capacity, key=str) if alloc[k] < capacity[k]]
        w = {k: max(0.0, float(weight.get(k, 0.0))) for k in open_}
        if sum(w.values()) <= 0:
            w = dict.fromkeys(open_, 1.0)
        wsum = sum(w.values())
        share = {k: left * w[k] / wsum for k in open_}
        step = {k: min(int(share[k]), capacity[k] - alloc[k]) for k in open_}
        if not any(step.values()):
            for k in sorted(open_, key=lambda k: (-(share[k] - int(share[k])), -w[k], str(k)))[:left]:
                step[k] = 1
        for k, s in step.items():
            alloc[k] += s
        left -= sum(step.values())
    return alloc


def _level_weight(level: int, weights: Sequence[float]) -> float:
    if level <= 0:
        return weights[0]
    return weights[min(level, len(weights)) - 1]


def quotas(pool: Sequence[Example], n: int, level_weights: Sequence[float] = (1, 2, 3, 4, 5),
           sets: int = 1) -> dict[Stratum, int]:
    """How many problems of each (type, level) a set of `n` takes: equal per type, more from higher
    levels. With `sets` disjoint sets, each may use a 1/sets share of every stratum."""
    capacity = {s: c // sets for s, c in Counter(stratum(e) for e in pool).items()}
    by_type: dict[str, dict[Stratum, int]] = {}
    for s, c in capacity.items():
        by_type.setdefault(s[0], {})[s] = c
    per_type = allocate(n, {t: sum(c.values()) for t, c in by_type.items()}, dict.fromkeys(by_type, 1.0))
    out: dict[Stratum, int] = {}
    for t, caps in by_type.items():
        out.update(allocate(per_type[t], caps, {s: _level_weight(s[1], level_weights) for s in caps}))
    return {s: q for s, q in out.items() if q}


def ranked(pool: Sequence[Example], seed: int) -> dict[Stratum, list[Example]]:
    """Each stratum's problems in a seeded random order (the order in which they are picked)."""
    groups: dict[Stratum, list[Example]] = {}
    for ex in sorted(pool, key=lambda e: e.id):
        groups.setdefault(stratum(ex), []).append(ex)
    for s, items in groups.items():
        random.Random(f"xling-select:{seed}:{s[0]}:{s[1]}").shuffle(items)
    return groups


def select_sets(pool: Sequence[Example], sizes: Sequence[int], *, seed: int = 0,
                level_weights: Sequence[float] = (1, 2, 3, 4, 5),
                ok: Callable[[str, int], bool] = lambda pid, j: True) -> list[list[Example]]:
    """Disjoint sets of problems, set j of `sizes[j]`, all matched on type and level.

    Set j takes, stratum by stratum, the first problems of the seeded order that no earlier set
    took and that `ok(id, j)` accepts (e.g. "has a translation in set j's language").
    """
    order = ranked(pool, seed)
    sets_ = len(sizes)
    used: set[str] = set()
    out: list[list[Example]] = []
    for j, size in enumerate(sizes):
        chosen: list[Example] = []
        for s, q in sorted(quotas(pool, size, level_weights, sets_).items(), key=lambda kv: str(kv[0])):
            taken = 0
            for ex in order.get(s, []):
                if taken == q:
                    break
                if ex.id not in used and ok(ex.id, j):
                    chosen.append(ex)
                    used.add(ex.id)
                    taken += 1
        out.append(chosen)
    return out


def set_sizes(build: str, n: int, langs: Sequence[str]) -> list[int]:
    if build == "parallel":
        return [n]
    if build == "unparallel":
        return [n] * len(langs)
    return [n // len(langs) + (1 if j < n % len(langs) else 0) for j in range(len(langs))]


# -- data per language -------------------------------------------------------------------------

def translate_hint(spec: TrainData, langs: Sequence[str]) -> str:
    path = f" path={spec.path}" if spec.path else ""
    sets = f" sets={len(spec.languages())}" if spec.build == "unparallel" else ""
    return (f"python run.py translate source={spec.source}{path} split={spec.split} langs={','.join(langs)} "
            f"n={spec.n} seed={spec.seed}{sets}")


def read_translations(folder: str | Path, langs: Iterable[str]) -> dict[str, dict[str, Example]]:
    """The accepted translations in `folder/<lang>.jsonl` (what the translate stage writes)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise XlingError(f"translations={folder} is a file; give the folder that 'python run.py translate' wrote")
    if not folder.is_dir():
        raise XlingError(f"translations folder {folder} does not exist; make it with 'python run.py translate'")
    out: dict[str, dict[str, Example]] = {}
    for lang in langs:
        file = folder / f"{lang}.jsonl"
        if file.is_file() and file.stat().st_size > 0:
            out[lang] = {e.id: e for e in read_examples(file)}
    return out


def language_tables(spec: TrainData) -> tuple[list[Example], dict[str, dict[str, Example]]]:
    """The pool (English if the source has it, else the first language) and id -> Example per language."""
    langs = spec.languages()
    need = tuple(dict.fromkeys([*langs, *check_codes(spec.require_langs)]))
    if spec.translations and not Path(spec.translations).expanduser().is_dir():  # even where no language needs it
        read_translations(spec.translations, [])
    src = SOURCES[spec.source]
    own: list[str] | None = None  # sources with open languages: load what the file has
    if src.langs:
        own = [lang for lang in need if lang in src.langs]
        if "en" in src.langs and "en" not in own:
            own.insert(0, "en")  # the English originals define the pool (types, levels)
    limit = None
    if spec.source == "synth":  # synth makes as many as asked: enough to balance types
        limit = spec.pool or max(2000, 4 * sum(set_sizes(spec.build, spec.n, langs)))
    examples = load(spec.source, path=spec.path, langs=own, limit=limit, split=spec.split, hub=spec.hub,
                    path_key="data.path")
    if spec.source == "synth" and spec.split != "test":  # never train on an evaluation problem
        from xling.data.synth import repeats

        evaluated = repeats(limit, spec.split, "test")  # synth-test-0 … synth-test-1999
        examples = [e for e in examples if e.id not in evaluated]
    if spec.pool is not None and spec.source != "synth":
        examples = _subsample(examples, spec.pool, spec.seed)
    tables: dict[str, dict[str, Example]] = {}
    for ex in examples:
        tables.setdefault(ex.lang, {}).setdefault(ex.id, ex)
    missing = [lang for lang in need if lang not in tables]
    if missing and spec.translations:
        for lang, table in read_translations(spec.translations, missing).items():
            tables[lang] = table
    missing = [lang for lang in need if lang not in tables]
    if missing:
        where = (f"neither {spec.source} nor the translations in {spec.translations} have"
                 if spec.translations else f"data set {spec.source} has no")
        raise XlingError(f"{where} {', '.join(missing)}; make them with: {translate_hint(spec, missing)} "
                         "and give its folder as translations=DIR")
    base = "en" if "en" in tables else langs[0]
    pool = list(tables[base].values())
    return pool, tables


def _subsample(examples: list[Example], size: int, seed: int) -> list[Example]:
    """Keep `size` problems (all their languages), drawn in a seeded order, one type after another.

    Sources list problems grouped by type, so the first N rows would drop whole types.
    """
    by_type: dict[str, dict[str, None]] = {}
    for ex in examples:
        by_type.setdefault(str(ex.meta.get("type", "")), {})[ex.id] = None
    rng = random.Random(seed)
    queues = []
    for t in sorted(by_type):
        ids = sorted(by_type[t])
        rng.shuffle(ids)
        queues.append(ids)
    keep: set[str] = set()
    while len(keep) < size and any(queues):
        for q in queues:
            if q and len(keep) < size:
                keep.add(q.pop())
    return [ex for ex in examples if ex.id in keep]


def _with_meta(ex: Example, original: Example | None) -> Example:
    """A translated problem takes type and level from its original."""
    if original is None or original is ex:
        return ex
    meta = dict(ex.meta)
    for key in ("type", "level"):
        if key in original.meta:
            meta.setdefault(key, original.meta[key])
    return Example(ex.id, ex.lang, ex.question, ex.answer, ex.kind, meta)


def build(spec: TrainData, tables: tuple[list[Example], dict[str, dict[str, Example]]] | None = None,
          ) -> tuple[list[Example], dict]:
    """The training examples a spec asks for, and a summary of them (`tables`: `language_tables(spec)`,
    when the caller has loaded them already)."""
    langs = spec.languages()
    pool, tables = language_tables(spec) if tables is None else tables
    originals = {e.id: e for e in pool}
    required = check_codes(spec.require_langs)

    def has(pid: str, lang: str) -> bool:
        return pid in tables[lang]

    if spec.build == "parallel":
        def ok(pid: str, j: int) -> bool:
            return all(has(pid, lang) for lang in (*langs, *required))
    else:
        def ok(pid: str, j: int) -> bool:
            return has(pid, langs[j]) and all(has(pid, lang) for lang in required)

    sizes = set_sizes(spec.build, spec.n, langs)
    sets_ = select_sets(pool, sizes, seed=spec.seed, level_weights=spec.level_weights, ok=ok)
    rows: list[Example] = []
    wanted: dict[str, int] = {}
    for j, lang in enumerate(langs):
        chosen = sets_[0] if spec.build == "parallel" else sets_[j]
        wanted[lang] = sizes[0] if spec.build == "parallel" else sizes[j]
        rows.extend(_with_meta(tables[lang][ex.id], originals.get(ex.id)) for ex in chosen)
    unreferenced: Counter = Counter()
    if spec.references:
        rows, unreferenced = with_references(rows, spec.references)
    summary = summarize(rows, spec, wanted)
    if spec.references:
        summary["no_reference"] = dict(unreferenced)
    empty = [lang for lang in langs if not summary["by_lang"].get(lang)]
    if empty and spec.references and all(unreferenced.get(lang) for lang in empty):
        raise XlingError(f"no problem for {', '.join(empty)} has a reference answer in {spec.references}; write them "
                         f"with: {pivot_hint(spec)}")
    if empty:
        raise XlingError(f"no problems for {', '.join(empty)} (the data and its translations have none that fit); "
                         f"make them with: {translate_hint(spec, empty)}")
    return rows, summary


def pivot_hint(spec: TrainData) -> str:
    """The command that writes the reference answers of this training set (the pivot stage)."""
    keys = [f"data.source={spec.source}"]
    if spec.path:
        keys.append(f"data.path={spec.path}")
    if spec.k is not None:
        keys.append(f"data.k={spec.k}")
    else:
        keys.append(f"data.langs={','.join(spec.langs)}")
    keys += [f"data.n={spec.n}", f"data.build={spec.build}", f"data.seed={spec.seed}"]
    if spec.translations:
        keys.append(f"data.translations={spec.translations}")
    return f"python run.py pivot {' '.join(keys)} (then data.references=<its folder>)"


def with_references(rows: Sequence[Example], folder: str | Path) -> tuple[list[Example], Counter]:
    """Rows with the pivot stage's English reference answer in meta['reference']; rows whose problem has
    none (not written yet, or rejected) are left out and counted per language."""
    refs = read_references(folder)
    out: list[Example] = []
    missing: Counter = Counter()
    for ex in rows:
        ref = refs.get(ex.id)
        if ref is None:
            missing[ex.lang] += 1
            continue
        out.append(Example(ex.id, ex.lang, ex.question, ex.answer, ex.kind, {**ex.meta, "reference": ref}))
    return out, missing


def summarize(rows: Sequence[Example], spec: TrainData | None = None, wanted: dict[str, int] | None = None) -> dict:
    """Counts per language, type and level (and per language × type / level)."""
    by_lang = Counter(e.lang for e in rows)
    out: dict[str, Any] = {
        "rows": len(rows),
        "problems": len({e.id for e in rows}),
        "by_lang": {lang: by_lang[lang] for lang in sorted(by_lang, key=CODES.index)},
        "by_type": dict(sorted(Counter(stratum(e)[0] for e in rows).items())),
        "by_level": {str(k): v for k, v in sorted(Counter(stratum(e)[1] for e in rows).items())},
        "by_lang_type": {}, "by_lang_level": {},
    }
    for lang in out["by_lang"]:
        mine = [e for e in rows if e.lang == lang]
        out["by_lang_type"][lang] = dict(sorted(Counter(stratum(e)[0] for e in mine).items()))
        out["by_lang_level"][lang] = {str(k): v for k, v in sorted(Counter(stratum(e)[1] for e in mine).items())}
    if spec is not None:
        out.update({"source": spec.source, "build": spec.build, "langs": list(spec.languages()), "n": spec.n,
                    "seed": spec.seed, "prefix": spec.prefix, "variant": spec.variant})
    if wanted:
        short = {lang: want - by_lang.get(lang, 0) for lang, want in wanted.items() if by_lang.get(lang, 0) < want}
        out["shortfall"] = short
    return out


def show_summary(summary: dict) -> None:
    """Print the counts per language, type and level."""
    langs = list(summary["by_lang"])
    types = list(summary["by_type"])
    levels = list(summary["by_level"])
    rows = [[lang, summary["by_lang"][lang], *[summary["by_lang_type"][lang].get(t, 0) for t in types]]
            for lang in langs]
    print_table(f"training set: {summary['rows']} rows, {summary['problems']} distinct problems",
                ["lang", "rows", *types], rows)
    rows = [[lang, *[summary["by_lang_level"][lang].get(lv, 0) for lv in levels]] for lang in langs]
    print_table("per level", ["lang", *[f"level {lv}" for lv in levels]], rows)
    unreferenced = summary.get("no_reference") or {}
    for lang, missing in (summary.get("shortfall") or {}).items():
        why = (f"{unreferenced[lang]} without a reference answer" if unreferenced.get(lang)
               else "missing or rejected translations")
        console.print(f"warning: {lang} has {missing} problems fewer than asked ({why}); translate more, write "
                      "the missing references with the pivot stage, or lower n", style="yellow", markup=False)


# -- output ------------------------------------------------------------------------------------

def to_records(rows: Sequence[Example], prefix: bool = False, variant: str = "paper") -> list[dict]:
    """One record per row in TRL's conversational format, with the columns rewards and SFT need."""
    if variant not in VARIANTS:
        raise XlingError(f"unknown prompt variant '{variant}'; variants: {', '.join(VARIANTS)}")
    out = []
    for ex in rows:
        s = stratum(ex)
        out.append({
            "prompt": build_messages(ex, prefix=prefix, variant=variant),
            "answer": ex.answer, "lang": ex.lang, "id": ex.id, "kind": ex.kind,
            "question": ex.question, "type": s[0], "level": s[1],
            "solution": ex.meta.get("solution"), "reference": ex.meta.get("reference"),
        })
    return out


def to_dataset(rows: Sequence[Example], spec: TrainData | None = None, *, prefix: bool | None = None,
               variant: str | None = None):
    """A `datasets.Dataset` (columns prompt, answer, lang, id, kind, question, type, level, solution, reference)."""
    import datasets

    prefix = spec.prefix if prefix is None and spec is not None else bool(prefix)
    variant = variant or (spec.variant if spec is not None else "paper")
    return datasets.Dataset.from_list(to_records(rows, prefix, variant))


def save(rows: Sequence[Example], spec: TrainData, run_dir: str | Path, summary: dict | None = None) -> Path:
    """Write `trainset.jsonl` (the records `to_dataset` holds) and `trainset_summary.json` to run_dir."""
    run_dir = Path(run_dir)
    path = atomic_write_jsonl(run_dir / "trainset.jsonl", to_records(rows, spec.prefix, spec.variant))
    atomic_write_json(run_dir / "trainset_summary.json", summary or summarize(rows, spec))
    return path


def load_saved(run_dir: str | Path):
    """The training set a run folder holds, as a `datasets.Dataset`."""
    import datasets

    return datasets.Dataset.from_list(read_jsonl(Path(run_dir) / "trainset.jsonl"))


REFERENCES_FILE = "references.jsonl"  # what the pivot stage writes in its store folder


def read_references(folder: str | Path) -> dict[str, str]:
    """id -> English reference, from a pivot store folder (or run folder, or its references.jsonl)."""
    path = Path(folder).expanduser()
    file = path / REFERENCES_FILE if path.is_dir() else path
    if not file.is_file():
        raise XlingError(f"data.references={folder}: no {REFERENCES_FILE} there; write the references with "
                         "'python run.py pivot' and give its folder")
    from xling.common.store import Store

    last = Store(file, key=lambda rec: str(rec["id"])).records  # a later rejection replaces an earlier reference
    return {pid: rec["reference"] for pid, rec in last.items()
            if isinstance(rec.get("reference"), str) and rec["reference"].strip()}
