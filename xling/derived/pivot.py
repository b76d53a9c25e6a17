"""The pivot stage (PB-RLSVR): a pivot model writes an English reference answer for each training problem.

    problems = pivot_problems(spec)                  # one per problem of the training set, in English
    store = ReferenceStore(folder)
    report = write_references(problems, make_generator, store, settings)
    read_references(folder)                          # id -> reference, what `data.references=DIR` reads

The pivot model (any model: vLLM on a GPU, transformers elsewhere, through `xling.generate`) answers
each problem in English, prompted as evaluation prompts (the paper's "Please always think in
English." + "Solve ... \\boxed{}"), greedy by default. A problem whose training set has no English
version is asked in the language it has (its translation's English source when it was translated),
and the pivot still answers in English. The reference is the answer after a closed `</think>`
block, else the whole answer.

References are cached per problem in a store folder shared by every run with the same pivot model
and settings (default `$XLING_CACHE/references/<model>-<settings hash>/<source>-<split>`), one JSON
line per problem appended as each chunk is generated: an interrupted run resumes where it stopped,
a re-run writes only what is missing, and a record made for another question text is written again.
A reference that is empty, or cut off at `max_tokens` (unless kept), is stored as rejected with its
reason and left out of training; `retry_rejected` writes it again. Where the gold answer is known,
each reference's final answer is graded with the one grader (the pivot's accuracy, reported only:
the reward never sees gold labels).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from xling.common.console import console
from xling.common.io import append_jsonl, iter_jsonl
from xling.common.store import Store
from xling.data import Example
from xling.generate.sampling import SamplingSection
from xling.data.trainset import REFERENCES_FILE as FILE, read_references  # noqa: F401 (read_references: the store's reader)



@dataclass(kw_only=True)
class Settings(SamplingSection):
    """How the pivot model writes references (what names the store, with the model); the sampling
    settings are `xling.generate.sampling.SamplingSection`'s, greedy by default."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 2048
    seed: int = 0
    chunk: int = 64  # problems per generation call (what an interruption can lose)
    keep_truncated: bool = False  # keep references cut off at max_tokens


def reference_text(text: str) -> str:
    """The reference part of a pivot answer: after a closed reasoning block; '' if one is left open."""
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1].strip()
    if "<think>" in text:
        return ""
    return text.strip()


def pivot_messages(ex: Example) -> list[dict[str, str]]:
    """The chat that asks the pivot model to solve `ex` in English (its question may be in any language)."""
    from xling.data.prompts import build_messages

    return build_messages(Example(ex.id, "en", ex.question, ex.answer, ex.kind), prefix=False, variant="paper")


# -- the problems -------------------------------------------------------------------------------

def pivot_problems(spec: Any) -> tuple[list[Example], dict]:
    """One problem per id of the training set `spec` (a `TrainData`), in English where there is an English
    version (the source's, or the English source of a translation); also counts by the language asked."""
    from xling.data import trainset

    spec = replace(spec, references=None)
    pool, tables = trainset.language_tables(spec)
    rows, _ = trainset.build(spec, (pool, tables))
    english = tables.get("en", {})
    out: dict[str, Example] = {}
    for ex in rows:
        if ex.id in out and out[ex.id].lang == "en":
            continue
        if ex.lang == "en":
            out[ex.id] = ex
        elif ex.id in english:
            out[ex.id] = english[ex.id]
        elif isinstance(ex.meta.get("source_question"), str) and ex.meta.get("translated_from") == "en":
            out[ex.id] = Example(ex.id, "en", ex.meta["source_question"], ex.answer, ex.kind, dict(ex.meta))
        elif ex.id not in out:
            out[ex.id] = ex
    problems = list(out.values())
    return problems, dict(Counter(p.lang for p in problems))


# -- the store ----------------------------------------------------------------------------------

class ReferenceStore:
    """The pivot's answers in a folder, one record per problem (`references.jsonl`, a `xling.common.store`
    keyed by id: the last line of an id wins; a torn or malformed line counts in `damaged`)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.file = self.folder / FILE
        self.store = Store(self.file, key=lambda rec: str(rec["id"]))

    @property
    def records(self) -> dict[str, dict]:
        return self.store.records  # type: ignore[return-value]

    @property
    def damaged(self) -> int:
        return self.store.damaged

    def done(self, ex: Example, retry_rejected: bool = False) -> bool:
        rec = self.records.get(ex.id)
        if rec is None or rec.get("question") != ex.question:
            return False
        return rec.get("reference") is not None or not retry_rejected

    def add(self, records: Sequence[dict]) -> None:
        self.store.append(records)


# -- writing ------------------------------------------------------------------------------------

def _record(ex: Example, sample: Any, settings: Settings, model: str) -> dict:
    text = sample.text
    reference = reference_text(text)
    reason = None
    if sample.finish_reason == "length" and not settings.keep_truncated:
        reason = "truncated"
    elif not reference:
        reason = "no answer after the reasoning" if "<think>" in text else "empty"
    return {"id": ex.id, "lang": ex.lang, "question": ex.question, "answer": ex.answer, "kind": ex.kind,
            "reference": None if reason else reference, "reason": reason, "text": text,
            "finish_reason": sample.finish_reason, "tokens": sample.tokens, "model": model}


def write_references(problems: Sequence[Example], make_generator: Callable[[], Any], store: ReferenceStore,
                     settings: Settings, *, model: str = "", retry_rejected: bool = False,
                     ledger: Path | None = None) -> dict:
    """Write the missing references of `problems` into `store`, chunk by chunk; returns counts.

    `ledger`: a JSONL file of the run's own that gets one line per reference written, before the
    store does; the counts of written, accepted and rejected ones are then the whole run's,
    however often it was killed and run again (else: this call's)."""
    from xling.derived.graded import sample_graded
    from xling.generate.completions import stable_seed

    todo = [ex for ex in problems if not store.done(ex, retry_rejected)]
    report: dict = {"problems": len(problems), "cached": len(problems) - len(todo), "written": 0, "accepted": 0,
                    "rejected": 0, "reasons": Counter()}

    def save(chunk: list) -> None:
        records = []
        for ex, samples, grades in chunk:
            rec = _record(ex, samples[0], settings, model)
            rec["correct"] = None if grades[0].error else bool(grades[0].correct)
            rec["extracted"] = grades[0].extracted
            records.append(rec)
        if ledger is not None:  # first: a kill between the two leaves a line written again
            append_jsonl(ledger, [{k: rec[k] for k in ("id", "question", "model", "reason")} for rec in records])
        store.add(records)
        for rec in records:
            report["written"] += 1
            if rec["reason"]:
                report["rejected"] += 1
                report["reasons"][rec["reason"]] += 1
            else:
                report["accepted"] += 1

    if todo:
        console.print(f"pivot: writing {len(todo)} reference answer(s) with {model}"
                      + (f" ({report['cached']} cached)" if report["cached"] else ""), markup=False)
        sample_graded(todo, make_generator, save, messages=pivot_messages,
                      seed_of=lambda ex: stable_seed(settings.seed, "pivot", ex.id),
                      gold=lambda ex: (ex.answer, "en", ex.kind), n=1, temperature=settings.temperature,
                      top_p=settings.top_p, max_tokens=settings.max_tokens, seed=settings.seed, chunk=settings.chunk,
                      label="pivot")
    if ledger is not None:
        report.update(ledger_counts(ledger, problems, model))
    report["reasons"] = dict(report["reasons"])
    report.update(summarize(problems, store))
    return report


def ledger_counts(ledger: Path, problems: Sequence[Example], model: str) -> dict:
    """The references a run wrote for `problems` (by `model`), over all its sessions, from its ledger
    (the last line of a problem wins): written, accepted, rejected, reasons, and cached (the others)."""
    asked = {ex.id: ex.question for ex in problems}
    last: dict[str, dict] = {}
    for _, rec, err in iter_jsonl(ledger) if Path(ledger).is_file() else ():
        if rec is not None and asked.get(str(rec.get("id"))) == rec.get("question") and rec.get("model") == model:
            last[str(rec["id"])] = rec
    reasons = Counter(rec["reason"] for rec in last.values() if rec.get("reason"))
    rejected = sum(reasons.values())
    return {"cached": len(problems) - len(last), "written": len(last), "accepted": len(last) - rejected,
            "rejected": rejected, "reasons": reasons}


def summarize(problems: Sequence[Example], store: ReferenceStore) -> dict:
    """Over `problems`: how many have a reference, why the others have none, and the pivot's accuracy."""
    recs = [store.records.get(ex.id) for ex in problems]
    usable = [r for r in recs if r and r.get("reference") is not None]
    graded = [r for r in recs if r and r.get("correct") is not None]
    return {"available": len(usable), "missing": len(problems) - len(usable),
            "missing_reasons": dict(Counter((r or {}).get("reason") or "not written" for r in recs
                                            if not (r and r.get("reference") is not None))),
            "pivot_accuracy": (sum(bool(r["correct"]) for r in graded) / len(graded)) if graded else None,
            "graded": len(graded), "truncated": sum(1 for r in recs if r and r.get("finish_reason") == "length")}
