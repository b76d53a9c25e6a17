"""Benchmark of the analysis: bootstrap intervals from a per-item file, against the former implementation.

    python -m xling.perf.analysis [--sizes 250,2500,25000,100000] [--boots 1000,10000]
        [--models 2] [--langs 11] [--ref-max-gb 3] [--no-reference] [--keep DIR] [--json FILE]

For each size it writes a per-item file like `transfer items=` reads (`--models` models × `--langs`
languages × one benchmark, that many items per cell, `correct` true or false) and, for each
replicate count, runs `xling.tasks.transfer.intervals` (read the file column-wise, build the item
table, bootstrap every transfer metric) in a fresh child process, which reports its wall time,
the seconds spent reading and building the item table, the seconds spent inside the statistic
callback (`transfer_metrics`, once per replicate), and its peak resident memory (`ru_maxrss`,
the whole process: Python, numpy and pyarrow included). The same is done with the reference:
the implementation xling had before (JSONL read into a list of dicts, a Python loop building the
item table, and for each cell a gather of replicates × items scores), kept below. The speed-up is
reference wall ÷ new wall, and the two results are compared to the last digit. The reference is
skipped where its estimated peak (2 × replicates × items × 8 bytes of gathered draws and scores,
plus about 700 bytes per record held as a dict) exceeds `--ref-max-gb`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

LANGS = ("en", "es", "ru", "de", "fr", "bn", "th", "sw", "zh", "ja", "te")
BYTES_PER_RECORD = 700  # a record held as a dict of five keys, measured on CPython 3.11


# ---------------------------------------------------------------------------------------------
# The reference: xling's bootstrap and item reading as they were before the bootstrap from draw
# counts (xling/analysis/metrics.py and xling/tasks/transfer.py), unchanged but for names.
# ---------------------------------------------------------------------------------------------


@dataclass
class ReferenceItemScores:
    """Per-item scores (0–1; a mean over samples for AIME) aligned by item id per benchmark."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, dict[tuple[str, str], np.ndarray]] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> "ReferenceItemScores":
        cells: dict[str, dict[tuple[str, str], dict[str, list[float]]]] = {}  # b -> (model, lang) -> id
        order: dict[str, dict[str, None]] = {}
        for r in records:
            b = str(r["benchmark"])
            score = r["score"] if "score" in r else r["correct"]
            cell = cells.setdefault(b, {}).setdefault((str(r["model"]), str(r["lang"])), {})
            cell.setdefault(str(r["id"]), []).append(float(score))
            order.setdefault(b, {})[str(r["id"])] = None
        items = cls()
        for b, per in cells.items():
            ids = list(order[b])
            pos = {i: n for n, i in enumerate(ids)}
            items.ids[b] = ids
            items.scores[b] = {}
            for key, by_id in per.items():
                arr = np.full(len(ids), np.nan)
                for i, scores in by_id.items():
                    arr[pos[i]] = sum(scores) / len(scores)
                items.scores[b][key] = arr
        return items

    def accuracies(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for b, per in self.scores.items():
            for (model, lang), arr in per.items():
                out.setdefault(model, {}).setdefault(b, {})[lang] = float(np.nanmean(arr) * 100)
        return out

    def _replicates(self, n_boot: int, rng: np.random.Generator) -> dict:
        reps: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for b, per in self.scores.items():
            groups: dict[bytes, list[tuple[str, str]]] = {}
            for key, arr in per.items():
                groups.setdefault(np.packbits(~np.isnan(arr)).tobytes(), []).append(key)
            for keys in groups.values():
                present = np.flatnonzero(~np.isnan(per[keys[0]]))
                if not len(present):
                    continue
                idx = present[rng.integers(0, len(present), size=(n_boot, len(present)))]
                for model, lang in keys:
                    reps.setdefault(model, {}).setdefault(b, {})[lang] = per[(model, lang)][idx].mean(axis=1) * 100
        return reps


def _leaves(obj: Any, path: tuple = ()) -> Iterable[tuple[tuple, Any]]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    else:
        yield path, obj


def _set_path(tree: dict, path: tuple, value: Any) -> None:
    node = tree
    for k in path[:-1]:
        node = node.setdefault(k, {})
    node[path[-1]] = value


def reference_bootstrap(items: ReferenceItemScores, statistic: Callable[[dict], Any], n_boot: int = 1000,
                        seed: int = 0, level: float = 0.95) -> Any:
    """The former `xling.analysis.metrics.bootstrap`."""
    if n_boot < 2:
        raise ValueError("n_boot must be at least 2")
    rng = np.random.default_rng(seed)
    reps = items._replicates(n_boot, rng)
    collected: dict[tuple, list[float]] = {}
    for r in range(n_boot):
        acc = {
            m: {b: {lang: float(v[r]) for lang, v in per_l.items() if not math.isnan(v[r])} for b, per_l in per_b.items()}
            for m, per_b in reps.items()
        }
        for path, value in _leaves(statistic(acc)):
            bucket = collected.setdefault(path, [])
            if value is not None and math.isfinite(value):
                bucket.append(float(value))
    alpha = (1 - level) / 2
    out: dict = {}
    for path, values in collected.items():
        ci = None
        if len(values) * 2 > n_boot:
            lo, hi = np.quantile(values, [alpha, 1 - alpha])
            ci = [float(lo), float(hi)]
        if path == ():
            return ci
        _set_path(out, path, ci)
    return out


def reference_intervals(cfg, langs: dict[str, list[str]]) -> dict:
    """The former `xling.tasks.transfer.intervals`: its reading and bootstrap, with today's cell check and
    statistic (`check_cells`, `statistic_of`), so that the two differ only in what is measured."""
    from xling.common.errors import XlingError
    from xling.common.io import read_jsonl
    from xling.tasks.transfer import check_cells, statistic_of

    need = ("model", "benchmark", "lang", "id")
    records = []
    bad = []
    bad_score = []
    for line, r in enumerate(read_jsonl(cfg.items), 1):
        if any(k not in r for k in need) or ("score" not in r and "correct" not in r):
            bad.append(line)
        elif r.get("error") != "unparseable gold" and not _valid_score(r.get("score", r.get("correct"))):
            bad_score.append(line)
        elif (r["model"] in (cfg.base, cfg.trained) and r["lang"] in langs.get(r["benchmark"], ())
              and r.get("error") != "unparseable gold"):
            records.append(r)
    if bad:
        raise XlingError(f"items file {cfg.items}: line(s) {bad[:5]} lack one of model, benchmark, lang, id, score|correct")
    if bad_score:
        raise XlingError(f"items file {cfg.items}: line(s) {bad_score[:5]} have a score|correct that is not true, false "
                         "or a number from 0 to 1")
    items = ReferenceItemScores.from_records(records)
    check_cells(items, cfg, langs)
    return reference_bootstrap(items, statistic_of(cfg), n_boot=cfg.n_boot, seed=cfg.seed)


def _valid_score(value) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, (int, float)) and 0 <= value <= 1


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------


def write_case(folder: Path, n_items: int, n_models: int = 2, n_langs: int = 11, seed: int = 0) -> Path:
    """items.jsonl: models "base", "rl1", ... × languages × benchmark math500, n_items each."""
    rng = np.random.default_rng(seed)
    models = ["base"] + [f"rl{i}" for i in range(1, n_models)]
    path = folder / f"items-{n_items}.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for k, model in enumerate(models):
            for j, lang in enumerate(LANGS[:n_langs]):
                hits = rng.random(n_items) < 0.3 + 0.4 * (n_langs - j) / n_langs + 0.03 * k
                f.writelines(f'{{"model": "{model}", "benchmark": "math500", "lang": "{lang}", "id": "math500-{i}", '
                             f'"correct": {"true" if h else "false"}}}\n' for i, h in enumerate(hits.tolist()))
    return path


def run_case(kind: str, items: Path, n_boot: int, n_langs: int = 11) -> dict:
    """Run the analysis once in this process ("new" or "ref"): its result, wall seconds, seconds in
    the bootstrap, and seconds in the statistic callback (`transfer_metrics`)."""
    from xling.analysis import metrics as M
    from xling.tasks import transfer

    cfg = transfer.Config(table="-", base="base", trained="rl1", train_langs=["en"], items=str(items), n_boot=n_boot)
    langs = {"math500": list(LANGS[:n_langs])}
    spent = {"bootstrap": 0.0, "statistic": 0.0}

    def timed(fn, phase):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[phase] += time.perf_counter() - t
        return wrapper

    here = globals()
    saved = M.transfer_metrics, M.bootstrap, here["reference_bootstrap"]
    M.transfer_metrics = timed(M.transfer_metrics, "statistic")
    M.bootstrap = timed(M.bootstrap, "bootstrap")
    here["reference_bootstrap"] = timed(here["reference_bootstrap"], "bootstrap")
    try:
        t = time.perf_counter()
        result = (transfer.intervals if kind == "new" else reference_intervals)(cfg, langs)
        wall = time.perf_counter() - t
    finally:
        M.transfer_metrics, M.bootstrap, here["reference_bootstrap"] = saved
    return {"result": result, "wall": wall, "read": wall - spent["bootstrap"], "bootstrap": spent["bootstrap"],
            "statistic": spent["statistic"]}


def _child(args) -> int:
    import resource

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = run_case(args.child, Path(args.items), args.n_boot, args.langs)
    Path(args.result).write_text(json.dumps(out["result"]))
    out.pop("result")
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["start_mb"] = base_rss / 1024
    print(json.dumps(out))
    return 0


def _spawn(kind: str, items: Path, n_boot: int, n_langs: int, result: Path) -> dict:
    cmd = [sys.executable, "-m", "xling.perf.analysis", "--child", kind, "--items", str(items),
           "--n-boot", str(n_boot), "--langs", str(n_langs), "--result", str(result)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def reference_peak_gb(n_items: int, n_boot: int, n_cells: int) -> float:
    """Estimated peak of the reference: draws and one cell's gathered scores, plus the records."""
    return (2 * n_boot * n_items * 8 + n_items * n_cells * BYTES_PER_RECORD) / 1e9


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m xling.perf.analysis", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250,2500,25000,100000", help="items per cell, comma-separated")
    ap.add_argument("--boots", default="1000,10000", help="replicate counts, comma-separated")
    ap.add_argument("--models", type=int, default=2)
    ap.add_argument("--langs", type=int, default=11)
    ap.add_argument("--ref-max-gb", type=float, default=3.0, help="skip the reference where it needs more")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--keep", help="folder for the item files (default: a temporary one)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--child", choices=["new", "ref"], help=argparse.SUPPRESS)
    ap.add_argument("--items", help=argparse.SUPPRESS)
    ap.add_argument("--n-boot", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args)

    from xling.common.console import console, print_table

    if not 1 <= args.langs <= len(LANGS) or args.models < 2:
        console.print(f"--langs must be 1..{len(LANGS)} and --models at least 2", markup=False)
        return 2
    sizes, boots = _ints(args.sizes), _ints(args.boots)
    n_cells = args.models * args.langs
    load = [os.getloadavg()[0]]
    rows, figures, notes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for n_items in sizes:
            t = time.perf_counter()
            items = write_case(folder, n_items, args.models, args.langs)
            console.print(f"{n_items:,} items per cell: {items.stat().st_size / 1e6:.0f} MB file written in "
                          f"{time.perf_counter() - t:.1f} s", markup=False)
            for n_boot in boots:
                new = _spawn("new", items, n_boot, args.langs, folder / "new.json")
                need = reference_peak_gb(n_items, n_boot, n_cells)
                if args.no_reference:
                    ref = {"skipped": "not asked"}
                elif need > args.ref_max_gb:
                    ref = {"skipped": f"needs about {need:.1f} GB"}
                    notes.append(f"{n_items:,} × {n_boot:,}: reference skipped, it needs about {need:.1f} GB "
                                 f"(> --ref-max-gb {args.ref_max_gb:g})")
                else:
                    ref = _spawn("ref", items, n_boot, args.langs, folder / "ref.json")
                same = "—"
                if "wall" in new and "wall" in ref:
                    same = "yes" if (folder / "new.json").read_text() == (folder / "ref.json").read_text() else "NO"
                figures.append({"items": n_items, "replicates": n_boot, "cells": n_cells, "new": new, "ref": ref,
                                "same": same})
                rows.append([
                    f"{n_items:,}", f"{n_boot:,}",
                    *(_fmt(new) if "wall" in new else [new.get("error", "?"), "", "", "", ""]),
                    *(_fmt(ref)[:2] if "wall" in ref else [ref.get("skipped") or ref.get("error", "?"), ""]),
                    f"{ref['wall'] / new['wall']:.1f}×" if "wall" in new and "wall" in ref else "—",
                    same,
                ])
                console.print(f"  {n_boot:,} replicates: new {rows[-1][2]} s, reference {rows[-1][7]}", markup=False)
    load.append(os.getloadavg()[0])
    notes.append(f"{os.cpu_count()} CPU cores; 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end "
                 "(figures are wall times: other work on the machine slows both implementations)")
    print_table(f"analysis ({args.models} models × {args.langs} languages × 1 benchmark; peak: whole process RSS)",
                ["items/cell", "replicates", "new s", "new peak MB", "read s", "bootstrap s", "of it statistic",
                 "ref s", "ref peak MB", "speed-up", "same intervals"], rows,
                note="read: reading the file and building the item table; bootstrap: the rest (drawing, counting, "
                     "the products, the statistic and the quantiles); statistic: inside transfer_metrics, called once "
                     "per replicate." + ("\n" + "\n".join(notes) if notes else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "load": load, "cases": figures}, indent=2) + "\n")
    return 1 if any(f["same"] == "NO" for f in figures) else 0


def _fmt(r: dict) -> list[str]:
    share = 100 * r["statistic"] / r["bootstrap"] if r["bootstrap"] else 0
    return [f"{r['wall']:.2f}", f"{r['peak_mb']:.0f}", f"{r['read']:.2f}", f"{r['bootstrap']:.2f}",
            f"{r['statistic']:.2f} s ({share:.0f}%)"]


if __name__ == "__main__":
    sys.exit(main())
