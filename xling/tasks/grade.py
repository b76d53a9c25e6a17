"""Task `grade`: grade completions from any source with the one grader, per language.

Input: JSON Lines, one completion per line with ``completion``, ``answer``, ``lang`` and optionally
``kind`` (math, number or choice; the recipe's `kind` otherwise) and ``id``. Output:
``graded.jsonl`` in the run folder (each input record plus ``extracted``, ``correct``,
``detected_lang``, ``on_target``, and ``error`` where grading found one) and a table of accuracy
and off-target rate per language. Malformed lines are reported with their line numbers and skipped.

Grading is resumable: lines are graded in chunks appended to ``graded.partial.jsonl`` (a resumable
store whose first line is a fingerprint of the input's bytes and the grading settings), so a run
killed part-way grades only the lines left when run again; the partial file is removed once
``graded.jsonl`` is written.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xling.analysis import metrics as M
from xling.evaluation import score as S
from xling.grading.answers import KINDS, TIMEOUT, UNPARSEABLE_GOLD, Grader
from xling.grading.settings import ScoreSection
from xling.common.config import Invalid, Recipe, shipped_path
from xling.common.console import console, fmt, print_table
from xling.common.errors import XlingError
from xling.common.io import atomic_write_jsonl, input_file, iter_jsonl
from xling.common.store import Store, fingerprint
from xling.grading.langid import detect_batch
from xling.data.languages import CODES, LANGUAGES
from xling.analysis.summary import MIN_JUDGED
from xling.report.results import judged_rate

REQUIRED = ("completion", "answer", "lang")
SHOW_BAD = 10
PARTIAL = "graded.partial.jsonl"  # graded lines so far (a fingerprint line first); gone once graded.jsonl is written
CHUNK = 512  # lines graded between two appends to it


@dataclass(kw_only=True)
class Config(ScoreSection, Recipe):
    """Task `grade`: its scoring keys (langid, min_chars, reasoning_only, timeout, workers) are
    `xling.grading.settings.ScoreSection`'s, as evaluation's `score.*`."""

    input: str  # the completions file, JSONL: completion, answer, lang[, kind, id]
    kind: Literal["math", "number", "choice"] = "math"  # the answer kind of lines without a `kind`: math, number or choice

    def check(self) -> None:
        if not str(self.input).strip():
            raise Invalid("input", "give the completions file as input=FILE.jsonl")
        super().check()


def read_items(path: Path, default_kind: str) -> tuple[list[tuple[int, dict]], list[str]]:
    """(line number, record) of the good lines, and one message per malformed line."""
    input_file(path, "input file", "give input=FILE.jsonl with one completion per line")
    items, bad = [], []
    for lineno, rec, err in iter_jsonl(path):
        if err:
            bad.append(f"line {lineno}: {err}")
            continue
        missing = [k for k in REQUIRED if rec.get(k) is None]
        if missing:
            bad.append(f"line {lineno}: missing {', '.join(missing)}")
            continue
        if not isinstance(rec["completion"], str):
            bad.append(f"line {lineno}: 'completion' is not text")
            continue
        if rec["lang"] not in LANGUAGES:
            bad.append(f"line {lineno}: unknown language '{rec['lang']}' (valid: {', '.join(CODES)})")
            continue
        kind = rec.get("kind") or default_kind
        if kind not in KINDS:
            bad.append(f"line {lineno}: unknown kind '{kind}' (valid: {', '.join(KINDS)})")
            continue
        items.append((lineno, rec))
    return items, bad


def grade_records(records: list[dict], cfg: Config) -> list[dict]:
    """Each record plus extracted, correct, detected_lang, on_target (and error, if any)."""
    with Grader(timeout=cfg.timeout, workers=cfg.workers) as grader:
        return _grade_with(grader, records, cfg)


def _grade_with(grader: Grader, records: list[dict], cfg: Config, note: str = "") -> list[dict]:
    completions = [r["completion"] for r in records]
    with console.status(f"grading {len(records)} completions{note}"):
        results = grader.grade_batch(completions, [r["answer"] for r in records], [r["lang"] for r in records],
                                     [r.get("kind") or cfg.kind for r in records])
    with console.status(f"identifying languages ({cfg.langid}){note}"):
        pool = grader.pool if grader.workers and cfg.langid != "lingua" else None
        detected = detect_batch(completions, cfg.langid, min_chars=cfg.min_chars,
                                reasoning_only=cfg.reasoning_only, pool=pool)
    out = []
    for rec, res, det in zip(records, results, detected):
        row = dict(rec)
        row.update(extracted=res.extracted, correct=res.correct, detected_lang=det,
                   on_target=None if det is None else det == rec["lang"])
        if res.error:
            row["error"] = res.error
        out.append(row)
    return out


def grading_key(path: Path, cfg: Config) -> str:
    """What graded lines depend on: the input file's bytes, the grading settings and the grader's
    version (`xling.evaluation.score.SCORE_VERSION`: lines graded by an earlier grader are graded again)."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return fingerprint({"input": digest.hexdigest(), "kind": cfg.kind, "langid": cfg.langid,
                        "min_chars": cfg.min_chars, "reasoning_only": cfg.reasoning_only, "timeout": cfg.timeout,
                        "version": S.SCORE_VERSION})


def graded_store(partial: Path, key: str, source: str = "") -> Store:
    """The graded lines so far: a `xling.common.store` of {line, row} keyed by input line, whose first
    line holds `key` (one made from another input or with other settings is not reused)."""
    return Store(partial, key="line", fingerprint=key, about={"input": source} if source else None,
                 valid=lambda rec: isinstance(rec.get("line"), int) and isinstance(rec.get("row"), dict))


def graded_so_far(partial: Path, key: str) -> dict[int, dict]:
    """Input line -> graded row, from a partial file of the same input and settings (else none)."""
    return {line: rec["row"] for line, rec in graded_store(partial, key).records.items()}


def grade_resumably(items: list[tuple[int, dict]], cfg: Config, run_dir: Path, key: str) -> list[dict]:
    """Grade chunk by chunk into `graded.partial.jsonl`; a re-run after a kill grades only the lines left."""
    store = graded_store(run_dir / PARTIAL, key, str(cfg.input))
    done = {line: rec["row"] for line, rec in store.records.items()}
    todo = [(line, rec) for line, rec in items if line not in done]
    if done and todo:
        console.print(f"resuming: {len(done)} of {len(items)} lines were graded before", markup=False)
    if todo:
        with Grader(timeout=cfg.timeout, workers=cfg.workers) as grader:
            for start in range(0, len(todo), CHUNK):
                chunk = todo[start:start + CHUNK]
                note = f" ({len(done) + start + 1}-{len(done) + start + len(chunk)} of {len(items)})"
                rows = _grade_with(grader, [rec for _, rec in chunk], cfg, note)
                store.append([{"line": line, "row": row} for (line, _), row in zip(chunk, rows)])
                done.update({line: row for (line, _), row in zip(chunk, rows)})
    return [done[line] for line, _ in items]


def _off_target(detected: list, requested: list) -> dict:
    """The off-target rate and how many answers it rests on; undetermined (None) below MIN_JUDGED of them."""
    judged = sum(d is not None for d in detected)
    rate = M.off_target_rate(detected, requested) if judged >= MIN_JUDGED else None
    return {"off_target": rate, "judged": judged}


def summarize(rows: list[dict]) -> dict:
    by_lang: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_lang[r["lang"]].append(r)
    langs = [c for c in CODES if c in by_lang]
    per_lang = {}
    for lang in langs:
        rs = by_lang[lang]
        errors = Counter(r["error"] for r in rs if r.get("error"))
        scored = [r for r in rs if r.get("error") != UNPARSEABLE_GOLD]
        per_lang[lang] = {
            "n": len(rs),
            "accuracy": 100 * sum(r["correct"] for r in scored) / len(scored) if scored else None,
            **_off_target([r["detected_lang"] for r in rs], [lang] * len(rs)),
            "undetermined": sum(r["detected_lang"] is None for r in rs),
            "no_answer": sum(r["extracted"] is None for r in rs),
            "unparseable_gold": errors.get(UNPARSEABLE_GOLD, 0),
            "timeouts": errors.get(TIMEOUT, 0),
        }
    scored = [r for r in rows if r.get("error") != UNPARSEABLE_GOLD]
    overall = {
        "n": len(rows),
        "accuracy": 100 * sum(r["correct"] for r in scored) / len(scored) if scored else None,
        **_off_target([r["detected_lang"] for r in rows], [r["lang"] for r in rows]),
        "unparseable_gold": sum(v["unparseable_gold"] for v in per_lang.values()),
        "timeouts": sum(v["timeouts"] for v in per_lang.values()),
    }
    return {"per_lang": per_lang, "overall": overall}


def show(summary: dict, cfg: Config) -> None:
    rows = [[lang, s["n"], fmt(s["accuracy"], 1), judged_rate(s["off_target"], None, s["judged"]), s["undetermined"],
             s["no_answer"], s["unparseable_gold"], s["timeouts"]] for lang, s in summary["per_lang"].items()]
    o = summary["overall"]
    rows.append(["all", o["n"], fmt(o["accuracy"], 1), judged_rate(o["off_target"], None, o["judged"]), "", "",
                 o["unparseable_gold"], o["timeouts"]])
    print_table(f"graded (default kind {cfg.kind}, language ID {cfg.langid})",
                ["lang", "n", "accuracy %", "off-target %", "undetermined", "no answer", "bad gold", "timeouts"], rows,
                note="accuracy leaves out unparseable gold answers; off-target leaves out answers whose language is "
                     f"undetermined (n: the answers judged), and is undetermined itself below {MIN_JUDGED} judged answers.")


def run(cfg: Config, run_dir: Path) -> dict:
    items, bad = read_items(shipped_path(cfg.input), cfg.kind)
    for message in bad[:SHOW_BAD]:
        console.print(f"[yellow]skipped[/] {cfg.input} {message}", highlight=False)
    if len(bad) > SHOW_BAD:
        console.print(f"[yellow]skipped[/] {len(bad) - SHOW_BAD} more malformed lines", highlight=False)
    if not items:
        raise XlingError(f"{cfg.input} has no gradable lines ({len(bad)} malformed); each line needs "
                         f"{', '.join(REQUIRED)}")
    path = shipped_path(cfg.input)
    rows = grade_resumably(items, cfg, run_dir, grading_key(path, cfg))
    atomic_write_jsonl(run_dir / "graded.jsonl", rows)
    (run_dir / PARTIAL).unlink(missing_ok=True)
    summary = summarize(rows)
    show(summary, cfg)
    console.print(f"graded {len(rows)} lines -> {run_dir / 'graded.jsonl'}"
                  + (f"; skipped {len(bad)} malformed" if bad else ""), markup=False)
    return {"input": cfg.input, "graded": len(rows), "skipped": len(bad),
            "skipped_lines": bad, **summary}
