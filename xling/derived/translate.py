"""The translate stage: parallel training data for any language, from English problems and a local model.

A local instruct model, through `xling.generate` (vLLM or transformers), translates each problem greedily.
A translation is rejected when its numbers differ from the source's (the multiset of numbers,
normalised: native digits to ASCII, thousands separators dropped, decimal commas read as points;
LaTeX is kept and compared too), when it is not in the target language's script, is unchanged,
or is far too short or too long. Accepted translations are stored per language in
`STORE/<lang>.jsonl` (the uniform Example format; `en.jsonl` keeps the originals), rejections in
`STORE/rejected.jsonl`; both grow as batches finish, so an interrupted run resumes, and a re-run
translates only what is missing (a stored result counts only for the same source text and model).
A problem's worked solution (MATH, GSM8K, synth), when it has one, is translated with it and
checked the same way; a rejected solution leaves the translated
problem without one (SFT then skips it) and is counted, never kept untranslated. The store is then
a multilingual copy of the data set: give it
to a training set as `translations=DIR`, or to a benchmark as `path=DIR`. `translate_selection` translates exactly the problems the training-set builder will
pick (same selection, same seed), replacing rejected ones with the next candidates.

A translator is any function `(texts, lang) -> translations` (from English; the model-made ones
also take `source=` for other directions); `generator_translator` makes one from a generator,
`hf_translator` and `vllm_translator` from a model.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Sequence

from xling.common.console import console
from xling.data import Example
from xling.common.errors import XlingError
from xling.common.io import append_jsonl, iter_jsonl
from xling.common.store import Store as Records
from xling.data.languages import LANGUAGES, get

Translator = Callable[[list[str], str], list[str]]

SYSTEM = "You are a professional translator of mathematics problems."
REQUEST = ("Translate the following math problem from English into {name} ({native}). Keep every number, "
           "formula and LaTeX expression exactly as it is, with ASCII digits; translate everything else. "
           "Output only the translation.\n\n{text}")


# Into English from another language (the translate-then-compare pivot reward translates answers).
REQUEST_FROM = ("Translate the following text from {source} into {name}. Keep every number, formula and LaTeX "
                "expression exactly as it is, with ASCII digits; translate everything else. Output only the "
                "translation.\n\n{text}")


def translation_messages(text: str, lang: str, source: str = "en") -> list[dict[str, str]]:
    """The chat that asks a model to translate `text` (in `source`) into `lang`."""
    row = get(lang)
    if source == "en":
        request = REQUEST.format(name=row.name, native=row.native, text=text)
    else:
        request = REQUEST_FROM.format(source=get(source).name, name=row.name, text=text)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": request}]


# -- checks ------------------------------------------------------------------------------------

_DIGITS = {ord(c): str(i) for row in LANGUAGES.values() if row.digits for i, c in enumerate(row.digits)}
_DIGITS.update({0xFF10 + i: str(i) for i in range(10)})  # full-width digits
_DIGITS.update({0x0660 + i: str(i) for i in range(10)})  # Arabic-Indic
_DIGITS.update({0x0966 + i: str(i) for i in range(10)})  # Devanagari
_RUN = re.compile(r"\d+(?:[,.'\u00a0\u202f\u2009 ]\d+)*")
_SEP = re.compile(r"([,.'\u00a0\u202f\u2009 ])")


def _split_run(run: str) -> list[str]:
    """'1,234.5' -> ['1234.5']; '3,5' -> ['3.5']; '1 000' -> ['1000']; '12 7' -> ['12', '7']."""
    pieces = _SEP.split(run)
    out: list[str] = []
    current = pieces[0]
    decimal = False
    for sep, group in zip(pieces[1::2], pieces[2::2]):
        if len(group) == 3 and not decimal:  # a thousands group (or a 3-digit decimal: read alike both sides)
            current += group
        elif sep in ".," and not decimal:
            current += "." + group
            decimal = True
        else:
            out.append(current)
            current, decimal = group, False
    out.append(current)
    return out


def numbers(text: str) -> Counter:
    """The multiset of numbers in `text`, normalised so that a faithful translation has the same one."""
    text = text.translate(_DIGITS).replace("{,}", ",").replace("{.}", ".")
    found: list[str] = []
    for m in _RUN.finditer(text):
        found.extend(_split_run(m.group()))
    return Counter(found)


_SCRIPTS = {
    "Cyrillic": [(0x0400, 0x04FF)],
    "Bengali": [(0x0980, 0x09FF)],
    "Thai": [(0x0E00, 0x0E7F)],
    "Telugu": [(0x0C00, 0x0C7F)],
    "Han": [(0x4E00, 0x9FFF), (0x3400, 0x4DBF)],
    "Japanese": [(0x4E00, 0x9FFF), (0x3040, 0x30FF)],
}
_MATH = re.compile(r"\$\$.*?\$\$|\$.*?\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[A-Za-z]+", re.S)


def script_share(text: str, lang: str) -> float | None:
    """Share of the letters outside math that are in `lang`'s script (None for Latin-script languages)."""
    ranges = _SCRIPTS.get(get(lang).script)
    if ranges is None:
        return None
    letters = [c for c in _MATH.sub(" ", text) if c.isalpha()]
    if not letters:
        return 0.0
    inside = sum(1 for c in letters if any(lo <= ord(c) <= hi for lo, hi in ranges))
    return inside / len(letters)


def clean(output: str) -> str:
    """A model's answer without reasoning blocks, code fences or wrapping quotes."""
    text = re.sub(r"<think>.*?</think>", "", output, flags=re.S)
    text = re.sub(r"^.*?</think>", "", text, flags=re.S).strip()  # a reasoning block opened in the prompt
    text = re.sub(r"^```\w*\n?|\n?```$", "", text).strip()
    pairs = {'"': '"', "'": "'", "“": "”", "«": "»", "„": "“", "「": "」"}
    if len(text) > 1 and pairs.get(text[0]) == text[-1] and text.count(text[0]) == 1 + (text[0] == text[-1]):
        text = text[1:-1].strip()
    return text


def rejection(source: str, translation: str, lang: str) -> str | None:
    """Why a translation is rejected, or None when it is accepted."""
    if not translation.strip():
        return "empty"
    if lang != "en" and translation.strip() == source.strip():
        return "unchanged"
    if len(translation) > 4 * len(source) + 80:
        return "too long"
    if len(translation) < 0.1 * len(source):  # Chinese and Japanese run to ~0.3 of the English length
        return "too short"
    share = script_share(translation, lang)
    if share is not None and share < 0.5:
        return "wrong script"
    if lang == "ja" and not re.search(r"[\u3040-\u30ff]", translation):
        return "wrong script"
    if numbers(source) != numbers(translation):
        return "numbers differ"
    return None


# -- the store ---------------------------------------------------------------------------------

class Store:
    """Accepted translations (`<lang>.jsonl`) and rejections (`rejected.jsonl`) in one folder, each file
    a `xling.common.store` (keyed by id, and by (id, language) for rejections; the last line wins; a
    torn or malformed line counts in `damaged`)."""

    REJECTED = "rejected"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, Records] = {}
        self.accepted: dict[str, dict[str, Example]] = {}
        self.rejected: dict[tuple[str, str], dict] = {}
        for file in sorted(self.folder.glob("*.jsonl")):
            if file.stem not in LANGUAGES and file.stem != self.REJECTED:  # e.g. a run's own files beside
                continue
            records = self.file(file.stem)
            if file.stem == self.REJECTED:
                self.rejected.update(records.records)  # type: ignore[arg-type]
                continue
            for rec in records.values():
                ex = Example.from_dict(rec)
                self.accepted.setdefault(ex.lang, {})[ex.id] = ex
        for lang, table in self.accepted.items():
            for pid in table:
                self.rejected.pop((pid, lang), None)

    def file(self, name: str) -> Records:
        """The store of `<name>.jsonl` (a language, or `rejected`)."""
        if name not in self.files:
            if name == self.REJECTED:
                records = Records(self.folder / f"{name}.jsonl", key=lambda rec: (str(rec.get("id")), str(rec.get("lang"))))
            else:
                records = Records(self.folder / f"{name}.jsonl", key=lambda rec: str(rec["id"]),
                                  valid=lambda rec: rec.get("lang") in LANGUAGES)
            self.files[name] = records
        return self.files[name]

    @property
    def damaged(self) -> int:
        """Lines of the folder's files that could not be read (e.g. cut short by a crash): translated again."""
        return sum(records.damaged for records in self.files.values())

    def keep_originals(self, examples: Sequence[Example]) -> None:
        """Keep the English originals in `en.jsonl` too, so the folder is a complete multilingual copy
        (usable as `path=` of a benchmark or of source `jsonl`)."""
        table = dict(self.accepted.get("en", {}))
        for ex in examples:
            table.setdefault(ex.id, ex)
        self.accepted["en"] = table
        self.file("en").rewrite(e.to_dict() for e in table.values())

    def has(self, pid: str, lang: str) -> bool:
        return pid in self.accepted.get(lang, {})

    def translated(self, ex: Example, lang: str, model: str = "") -> bool:
        """Whether an accepted translation of this very text is stored (made by `model`, when given)."""
        got = self.accepted.get(lang, {}).get(ex.id)
        return got is not None and _made_from(got.meta.get("source_question"), got.meta.get("model"), ex, model)

    def rejected_for(self, ex: Example, lang: str, model: str = "") -> bool:
        """Whether a rejected translation of this very text is stored (made by `model`, when given)."""
        rec = self.rejected.get((ex.id, lang))
        return rec is not None and _made_from(rec.get("source"), rec.get("model"), ex, model)

    def add(self, accepted: Sequence[Example], rejected: Sequence[dict]) -> None:
        by_lang: dict[str, list[Example]] = {}
        for ex in accepted:
            by_lang.setdefault(ex.lang, []).append(ex)
            self.accepted.setdefault(ex.lang, {})[ex.id] = ex
            self.rejected.pop((ex.id, ex.lang), None)
        for lang, rows in by_lang.items():
            self.file(lang).append(e.to_dict() for e in rows)
        if rejected:
            self.file(self.REJECTED).append(rejected)
            for rec in rejected:
                self.rejected[(rec["id"], rec["lang"])] = rec


def _made_from(source: str | None, by: str | None, ex: Example, model: str) -> bool:
    """A stored result is reused only for the same source text and, where both are named, the same model."""
    return (source is None or source == ex.question) and (not model or not by or by == model)


# -- translating -------------------------------------------------------------------------------

def translate(examples: Sequence[Example], langs: Iterable[str], translator: Translator, store: Store, *,
              batch_size: int = 32, retry_rejected: bool = False, model: str = "", ledger: Path | None = None) -> dict:
    """Translate English `examples` into `langs`, skipping what the store holds; returns counts.

    `ledger`: a JSONL file that gets one line per translation made (`ledger_line`), before the store
    does: what a run translated, across its kills (`ledger_counts`)."""
    langs = [lang for lang in langs if lang != "en"]
    report = {"requested": 0, "cached": 0, "skipped_rejected": 0, "translated": 0, "accepted": 0, "rejected": 0,
              "reasons": Counter(), "by_lang": {lang: Counter() for lang in langs},
              "solutions": {"translated": 0, "accepted": 0, "rejected": 0, "reasons": Counter()}}
    todo: dict[str, list[Example]] = {}
    for lang in langs:
        for ex in examples:
            report["requested"] += 1
            if store.translated(ex, lang, model):
                report["cached"] += 1
                report["by_lang"][lang]["cached"] += 1
            elif store.rejected_for(ex, lang, model) and not retry_rejected:
                report["skipped_rejected"] += 1
                report["by_lang"][lang]["skipped_rejected"] += 1
            else:
                todo.setdefault(lang, []).append(ex)
    total = sum(len(v) for v in todo.values())
    if total:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("translating", total=total)
            for lang, items in todo.items():
                for i in range(0, len(items), batch_size):
                    batch = items[i:i + batch_size]
                    outputs = translator([ex.question for ex in batch], lang)
                    if len(outputs) != len(batch):
                        raise XlingError(f"the translator returned {len(outputs)} texts for {len(batch)} problems")
                    with_solution = [j for j, ex in enumerate(batch) if _solution_of(ex)
                                     and rejection(ex.question, clean(str(outputs[j])), lang) is None]
                    solutions = translator([_solution_of(batch[j]) for j in with_solution], lang) if with_solution else []
                    if len(solutions) != len(with_solution):
                        raise XlingError(f"the translator returned {len(solutions)} texts for {len(with_solution)} "
                                         "solutions")
                    _file(batch, outputs, lang, store, report, model, dict(zip(with_solution, solutions)), ledger)
                    progress.advance(task, len(batch))
    report["reasons"] = dict(report["reasons"])
    report["solutions"]["reasons"] = dict(report["solutions"]["reasons"])
    report["by_lang"] = {lang: dict(c) for lang, c in report["by_lang"].items()}
    return report


def _solution_of(ex: Example) -> str | None:
    text = ex.meta.get("solution")
    return text if isinstance(text, str) and text.strip() else None


def _file(batch: Sequence[Example], outputs: Sequence[str], lang: str, store: Store, report: dict, model: str,
          solutions: dict[int, str] | None = None, ledger: Path | None = None) -> None:
    accepted, rejected = [], []
    solutions = solutions or {}
    for j, (ex, raw) in enumerate(zip(batch, outputs)):
        text = clean(str(raw))
        reason = rejection(ex.question, text, lang)
        report["translated"] += 1
        if reason is None:
            meta = {k: ex.meta[k] for k in ("type", "level") if k in ex.meta}
            meta.update({"translated_from": ex.lang, "source_question": ex.question, "model": model})
            if j in solutions:
                solution = clean(str(solutions[j]))
                why = rejection(_solution_of(ex) or "", solution, lang)
                report["solutions"]["translated"] += 1
                if why is None:
                    meta["solution"] = solution
                    report["solutions"]["accepted"] += 1
                else:
                    meta["solution_rejected"] = why
                    report["solutions"]["rejected"] += 1
                    report["solutions"]["reasons"][why] += 1
            accepted.append(Example(ex.id, lang, text, ex.answer, ex.kind, meta))
            report["accepted"] += 1
            report["by_lang"][lang]["accepted"] += 1
        else:
            rejected.append({"id": ex.id, "lang": lang, "reason": reason, "source": ex.question,
                             "translation": text, "source_numbers": sorted(numbers(ex.question).elements()),
                             "translation_numbers": sorted(numbers(text).elements()), "model": model})
            report["rejected"] += 1
            report["reasons"][reason] += 1
            report["by_lang"][lang]["rejected"] += 1
    if ledger is not None:  # first: a kill between the two leaves a line whose translation is made again
        append_jsonl(ledger, [ledger_line(ex, lang, model) for ex in accepted]
                     + [{"id": rec["id"], "lang": lang, "model": model, "reason": rec["reason"]} for rec in rejected])
    store.add(accepted, rejected)


def ledger_line(ex: Example, lang: str, model: str) -> dict:
    """An accepted translation as the run's ledger records it (with its worked solution's fate)."""
    solution = "accepted" if "solution" in ex.meta else ex.meta.get("solution_rejected")
    return {"id": ex.id, "lang": lang, "model": model, "reason": None, "solution": solution}


def ledger_counts(ledger: Path, pairs: set[tuple[str, str]], model: str) -> dict:
    """What a run translated, over all its rounds and sessions: the counts `translate_selection` reports,
    from its ledger (the last line of a problem and language wins), over the (id, lang) `pairs` it
    considered, made by `model`."""
    last: dict[tuple[str, str], dict] = {}
    for _, rec, err in iter_jsonl(ledger) if Path(ledger).is_file() else ():
        if rec is not None and (str(rec.get("id")), str(rec.get("lang"))) in pairs and rec.get("model") == model:
            last[(str(rec["id"]), str(rec["lang"]))] = rec
    out: dict = {"translated": len(last), "accepted": 0, "rejected": 0, "reasons": Counter(),
                 "by_lang": {}, "solutions": {"translated": 0, "accepted": 0, "rejected": 0, "reasons": Counter()}}
    for (_, lang), rec in last.items():
        outcome = "rejected" if rec.get("reason") else "accepted"
        out[outcome] += 1
        out["by_lang"].setdefault(lang, Counter())[outcome] += 1
        if rec.get("reason"):
            out["reasons"][rec["reason"]] += 1
        elif rec.get("solution"):
            out["solutions"]["translated"] += 1
            if rec["solution"] == "accepted":
                out["solutions"]["accepted"] += 1
            else:
                out["solutions"]["rejected"] += 1
                out["solutions"]["reasons"][rec["solution"]] += 1
    return out


def translate_selection(pool: Sequence[Example], langs: Sequence[str], translator: Translator, store: Store, *,
                        n: int | None, sets: int = 1, seed: int = 0,
                        level_weights: Sequence[float] = (1, 2, 3, 4, 5), batch_size: int = 32,
                        retry_rejected: bool = False, max_rounds: int = 3, model: str = "",
                        ledger: Path | None = None) -> dict:
    """Translate the problems a training set of `n` (× `sets` disjoint sets) will use.

    Rejected problems are replaced by the next candidates of the same type and level, for up to
    `max_rounds` rounds. Round r selects, in the seeded order, the problems not rejected in rounds
    before it, and translates what the store lacks; a problem the store holds as rejected counts as
    rejected in the round that selects it. So a run killed part-way and run again replays its
    finished rounds from the store (translating nothing) and goes on where it stopped: it makes
    the same calls, rejections and selection as a run that was never interrupted (the translators
    decode greedily), whatever runs with other settings left in the store. `n=None` translates the
    whole pool. With a `ledger` (a file of the run's own), the counts of translations made are
    those of the whole run, however often it was killed and run again (else: of this call).
    """
    from xling.data.trainset import select_sets

    langs = [lang for lang in langs if lang != "en"]
    totals: dict = {"rounds": 0, "translated": 0, "accepted": 0, "rejected": 0, "reasons": Counter(),
                    "by_lang": {lang: Counter() for lang in langs},
                    "solutions": {"translated": 0, "accepted": 0, "rejected": 0, "reasons": Counter()}}
    chosen: list[Example] = list(pool)
    considered: dict[str, None] = {}
    bad: set[str] = set()  # rejected in an earlier round
    for round_ in range(max(1, max_rounds)):
        if n is not None:
            sets_ = select_sets(pool, [n] * sets, seed=seed, level_weights=level_weights,
                                ok=lambda pid, j: pid not in bad)
            chosen = [ex for s in sets_ for ex in s]
        report = translate(chosen, langs, translator, store, batch_size=batch_size,
                           retry_rejected=retry_rejected and round_ == 0, model=model, ledger=ledger)
        totals["rounds"] += 1
        for key in ("translated", "accepted", "rejected"):
            totals[key] += report[key]
        totals["reasons"].update(report["reasons"])
        for key in ("translated", "accepted", "rejected"):
            totals["solutions"][key] += report["solutions"][key]
        totals["solutions"]["reasons"].update(report["solutions"]["reasons"])
        for lang, counts in report["by_lang"].items():
            totals["by_lang"][lang].update({k: v for k, v in counts.items() if k in ("accepted", "rejected")})
        considered.update(dict.fromkeys(ex.id for ex in chosen))
        rejected = {ex.id for ex in chosen for lang in langs if not store.translated(ex, lang, model)}
        if n is None or not rejected:
            break
        bad |= rejected
    if ledger is not None:  # every round of every session of this run, not only what this call translated
        counts = ledger_counts(ledger, {(pid, lang) for pid in considered for lang in langs}, model)
        totals.update({k: counts[k] for k in ("translated", "accepted", "rejected", "reasons", "solutions")})
        for lang in langs:
            totals["by_lang"][lang] = Counter(counts["by_lang"].get(lang, {}))
    store.keep_originals([ex for ex in chosen if any(store.translated(ex, lang, model) for lang in langs)])
    complete = sum(1 for ex in chosen if all(store.translated(ex, lang, model) for lang in langs))
    for lang in langs:
        totals["by_lang"][lang]["available"] = sum(1 for ex in chosen if store.translated(ex, lang, model))
    totals["solutions"]["reasons"] = dict(totals["solutions"]["reasons"])
    totals.update({"selected": len(chosen), "complete": complete, "reasons": dict(totals["reasons"]),
                   "by_lang": {lang: dict(c) for lang, c in totals["by_lang"].items()},
                   "selected_ids": [ex.id for ex in chosen], "considered_ids": list(considered)})
    return totals


# -- translators from a model ------------------------------------------------------------------

def generator_translator(generator, *, max_new_tokens: int = 1024) -> Translator:
    """Translate greedily with a `xling.generate` generator (either backend, on any device)."""

    def run(texts: list[str], lang: str, source: str = "en") -> list[str]:
        conversations = [translation_messages(t, lang, source) for t in texts]
        outputs = generator.chat(conversations, n=1, temperature=0.0, top_p=1.0, max_tokens=max_new_tokens, seed=0)
        return [samples[0].text for samples in outputs]

    return run


def hf_translator(model: str, *, max_new_tokens: int = 1024, batch_size: int = 8, template_from: str | None = None,
                  device: str | None = None) -> Translator:
    """Translate with transformers `generate` (greedy), e.g. on CPU for tests."""
    from xling.generate import load_generator

    return generator_translator(load_generator("hf", model, template_from=template_from, batch_size=batch_size,
                                               device=device), max_new_tokens=max_new_tokens)


def vllm_translator(model: str, *, max_new_tokens: int = 2048, template_from: str | None = None,
                    **options) -> Translator:
    """Translate with vLLM (greedy): the CUDA build on a GPU, the CPU build on the CPU. `options` are
    the vllm backend's (`gpu_memory_utilization`, `tensor_parallel_size`, `engine_kwargs`, ...)."""
    from xling.generate import load_generator

    return generator_translator(load_generator("vllm", model, template_from=template_from, **options),
                                max_new_tokens=max_new_tokens)
