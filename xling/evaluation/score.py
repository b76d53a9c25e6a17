"""Scoring: completions -> per-item records, through the one grader and language ID.

Each sample is graded by `xling.grading.answers` (extracted answer, correct) and its language identified
by `xling.grading.langid` (detected language, on target). An item's `score` is the mean correctness over
its n samples (AIME: 16; the others: 1). Per-item records are what `transfer`'s `items=` reads:

    {"model", "benchmark", "lang", "id", "n", "score", "correct", "extracted", "detected_lang",
     "on_target", "truncated", "answer", "finish_reason", "tokens"}

With one sample, `correct`, `truncated` and `on_target` are booleans (on_target None when the
language is undetermined) and `extracted` / `detected_lang` are strings; with n samples, `correct`
and `truncated` count samples, `on_target` is the share of judged samples on target and
`extracted` / `detected_lang` are lists. A generation that ended because `max_tokens` ran out
(finish_reason "length") is truncated; truncations are counted and reported per cell.

Scored shards (`RUN/scored/`) are a cache: each stored row carries `scored_from`, a digest of
what it was computed from (its completions, gold answer and kind, the scoring settings and
`SCORE_VERSION`), and `read_scored` reuses a row only when its id is one of the shard's, its n
is the shard's and that digest matches; every other item is scored again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from xling.grading.answers import Grader
from xling.common.store import Store, fingerprint
from xling.grading.langid import detect_batch
from xling.grading.settings import ScoreSection


def score_samples(samples: Sequence[Sequence[dict]], golds: Sequence[str], kinds: Sequence[str], lang: str,
                  grader: Grader, settings: ScoreSection) -> list[list[dict]]:
    """Grade and identify the language of every sample: per item, the n samples' results."""
    flat = [(i, s) for i, group in enumerate(samples) for s in group]
    texts = [s["text"] for _, s in flat]
    results = grader.grade_batch(texts, [golds[i] for i, _ in flat], lang, [kinds[i] for i, _ in flat])
    pool = grader.pool if grader.workers and settings.langid != "lingua" else None
    detected = detect_batch(texts, settings.langid, min_chars=settings.min_chars,
                            reasoning_only=settings.reasoning_only, pool=pool)
    out: list[list[dict]] = [[] for _ in samples]
    for (i, s), res, det in zip(flat, results, detected):
        out[i].append({
            "sample": s["sample"], "extracted": res.extracted, "correct": bool(res.correct), "error": res.error,
            "detected_lang": det, "on_target": None if det is None else det == lang,
            "truncated": s.get("finish_reason") == "length", "finish_reason": s.get("finish_reason"),
            "tokens": s.get("tokens"),
        })
    return out


def item_record(model: str, benchmark: str, lang: str, item_id: str, answer: str, graded: Sequence[dict]) -> dict:
    """One item's record from its graded samples (see the module docstring for the fields)."""
    n = len(graded)
    correct = sum(g["correct"] for g in graded)
    truncated = sum(g["truncated"] for g in graded)
    judged = [g["on_target"] for g in graded if g["on_target"] is not None]
    rec = {"model": model, "benchmark": benchmark, "lang": lang, "id": item_id, "n": n, "score": correct / n}
    if n == 1:
        g = graded[0]
        rec.update(correct=bool(g["correct"]), extracted=g["extracted"], detected_lang=g["detected_lang"],
                   on_target=g["on_target"], truncated=bool(g["truncated"]), finish_reason=g["finish_reason"],
                   tokens=g["tokens"])
    else:
        rec.update(correct=correct, extracted=[g["extracted"] for g in graded],
                   detected_lang=[g["detected_lang"] for g in graded],
                   on_target=sum(judged) / len(judged) if judged else None, truncated=truncated,
                   finish_reason=[g["finish_reason"] for g in graded], tokens=[g["tokens"] for g in graded])
    rec["answer"] = answer
    errors = sorted({g["error"] for g in graded if g.get("error")})
    if errors:
        rec["error"] = errors[0] if len(errors) == 1 else errors
    return rec


SCORE_VERSION = 2  # bump when grading or language identification changes what a row holds (2: box groups, hedges, unboxed LaTeX)
SCORED_KEY = "scored_from"


def scored_key(samples: Sequence[dict], answer: str, kind: str, settings: ScoreSection) -> str:
    """A digest of everything an item's scored row depends on: its completions (sample index, text,
    finish reason, tokens), its gold answer and kind, the scoring settings and `SCORE_VERSION`."""
    return fingerprint({"version": SCORE_VERSION, "settings": settings.as_dict(), "answer": answer, "kind": kind,
                        "samples": [[s.get("sample"), s.get("text"), s.get("finish_reason"), s.get("tokens")]
                                    for s in samples]})


def scored_store(path: Path) -> Store:
    """A scored shard: a `xling.common.store` of rows keyed by item id, rewritten whole when items change."""
    return Store(path, key="id", valid=lambda rec: isinstance(rec.get("id"), str))


def read_scored(path: Path, expected: Mapping[str, str], n: int) -> dict[str, dict]:
    """The still-valid rows of a scored shard, id -> row (without its `scored_from` digest).

    `expected` maps each of the shard's ids to its `scored_key`; a row is kept only when its id is
    among them, its n is `n` and its digest matches (an absent file: nothing is kept).
    """
    try:
        rows = scored_store(path).records
    except OSError:  # a damaged file: score what it lacks again
        return {}
    return {item_id: {k: v for k, v in rec.items() if k != SCORED_KEY} for item_id, rec in rows.items()
            if item_id in expected and rec.get("n") == n and rec.get(SCORED_KEY) == expected[item_id]}


def write_scored(path: Path, rows: Sequence[dict], keys: Sequence[str]) -> Path:
    """Write a scored shard atomically, each row with its `scored_key` (as `scored_from`)."""
    scored_store(path).rewrite([{**row, SCORED_KEY: key} for row, key in zip(rows, keys, strict=True)])
    return path


# ------------------------------------------------------------------------------- cell summaries


