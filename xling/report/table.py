"""The accuracy table: the CSV that evaluation writes and analysis reads.

Columns `model,benchmark,lang,accuracy` (accuracy in percent, 0–100) and optionally `n` (the
number of items). Other columns are kept out of the way and ignored. Anyone can write one by hand.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from xling.common.errors import XlingError
from xling.common.io import atomic_write_text, input_file
from xling.data.languages import LANGUAGES, unknown_language_message

COLUMNS = ("model", "benchmark", "lang", "accuracy")


@dataclass(frozen=True)
class Row:
    model: str
    benchmark: str
    lang: str
    accuracy: float
    n: int | None = None
    line: int = 0  # line in the file it came from (0 if built in memory)


def _limit(msgs: list[str], k: int = 5) -> str:
    more = f"; and {len(msgs) - k} more" if len(msgs) > k else ""
    return "; ".join(msgs[:k]) + more


class AccuracyTable:
    def __init__(self, rows: Iterable[Row], source: str = "table"):
        self.rows = list(rows)
        self.source = source
        self._cells: dict[tuple[str, str, str], Row] = {}
        dupes = []
        for row in self.rows:
            key = (row.model, row.benchmark, row.lang)
            if key in self._cells:
                dupes.append(f"({', '.join(key)}) at lines {self._cells[key].line} and {row.line}")
            else:
                self._cells[key] = row
        if dupes:
            raise XlingError(f"{source}: duplicate rows {_limit(dupes)}; keep one row per model, benchmark and language")

    # -- reading and writing ---------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path) -> "AccuracyTable":
        path = Path(path)
        if not path.exists():
            raise XlingError(f"accuracy table {path} does not exist")
        input_file(path, "accuracy table", f"it needs a header {','.join(COLUMNS)}[,n] and rows")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise XlingError(f"accuracy table {path} is not UTF-8 text (byte {e.start + 1}); save it as UTF-8") from None
        if not text.strip():
            raise XlingError(f"accuracy table {path} is empty; it needs a header {','.join(COLUMNS)}[,n] and rows")
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise XlingError(
                f"accuracy table {path} lacks column(s) {', '.join(missing)}; "
                f"its header is '{','.join(header)}', expected {','.join(COLUMNS)}[,n]"
            )
        rows, errors = [], []
        for rec in reader:
            line = reader.line_num
            extra = rec.pop(None, None)  # values beyond the header's columns
            if not extra and all(not (v or "").strip() for v in rec.values()):
                continue
            if extra:
                errors.append(f"line {line}: {len(header) + len(extra)} values for the {len(header)} columns of "
                              f"the header ({','.join(header)}); quote values that hold a comma")
                continue
            row, err = _parse_row(rec, line)
            if err:
                errors.append(err)
            else:
                rows.append(row)
        if errors:
            raise XlingError(f"accuracy table {path}: {_limit(errors)}")
        if not rows:
            raise XlingError(f"accuracy table {path} has a header but no rows")
        if len(rows) > 1 and all(r.accuracy <= 1 for r in rows) and any(r.accuracy > 0 for r in rows):
            from xling.common.console import console

            console.print(f"warning: every accuracy in {path} is at most 1; accuracies are percentages (0–100): "
                          "if these are fractions, multiply them by 100", markup=False, highlight=False)
        return cls(rows, source=f"accuracy table {path}")

    def write(self, path: str | Path) -> Path:
        return write_table(path, self.rows)

    # -- queries ---------------------------------------------------------------------------
    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model for r in self.rows))

    def benchmarks(self, model: str | None = None) -> list[str]:
        return list(dict.fromkeys(r.benchmark for r in self.rows if model is None or r.model == model))

    def langs(self, benchmark: str, models: Sequence[str] | None = None) -> list[str]:
        return list(dict.fromkeys(
            r.lang for r in self.rows if r.benchmark == benchmark and (models is None or r.model in models)
        ))

    def get(self, model: str, benchmark: str, lang: str) -> Row | None:
        return self._cells.get((model, benchmark, lang))

    def accuracies(self, model: str, benchmarks: Iterable[str], langs: dict[str, list[str]]) -> dict[str, dict[str, float]]:
        return {b: {lang: self._cells[(model, b, lang)].accuracy for lang in langs[b]} for b in benchmarks}

    def comparison(
        self,
        base: str,
        trained: str,
        train_langs: Sequence[str],
        benchmarks: Sequence[str] | None = None,
        langs: Sequence[str] | None = None,
    ) -> tuple[list[str], dict[str, list[str]]]:
        """Check that the table can compare `trained` with `base`; return benchmarks and languages.

        Every benchmark and language either model has (or that were asked for) must have a row
        for both models, and every training language must be among them.
        """
        models = self.models()
        for role, model in (("base", base), ("trained", trained)):
            if model not in models:
                raise XlingError(
                    f"{self.source} has no rows for {role} model '{model}'; models in it: {', '.join(models)}"
                )
        present = list(dict.fromkeys(self.benchmarks(base) + self.benchmarks(trained)))
        chosen = list(benchmarks) if benchmarks else present
        unknown_b = [b for b in chosen if b not in present]
        if unknown_b:
            raise XlingError(
                f"{self.source} has no rows for benchmark(s) {', '.join(unknown_b)}; "
                f"benchmarks in it: {', '.join(present)}"
            )
        per_b: dict[str, list[str]] = {}
        missing = []
        for b in chosen:
            ls = list(langs) if langs else self.langs(b, [base, trained])
            per_b[b] = ls
            for model in (base, trained):
                missing += [f"({model}, {b}, {lang})" for lang in ls if (model, b, lang) not in self._cells]
        if missing:
            raise XlingError(f"{self.source} lacks rows {_limit(missing, 8)}; add them or restrict langs=/benchmarks=")
        for b in chosen:
            absent = [lang for lang in train_langs if lang not in per_b[b]]
            if absent:
                raise XlingError(
                    f"training language(s) {', '.join(absent)} have no rows for benchmark {b} in {self.source}; "
                    "the training-set gain needs them (check train_langs=)"
                )
            if len([lang for lang in per_b[b] if lang not in train_langs]) == 0:
                raise XlingError(f"benchmark {b} has no language outside train_langs: MTI needs unseen languages")
        return chosen, per_b


def _parse_row(rec: dict, line: int) -> tuple[Row | None, str | None]:
    vals = {k: (rec.get(k) or "").strip() for k in (*COLUMNS, "n")}
    empty = [k for k in COLUMNS if not vals[k]]
    if empty:
        return None, f"line {line}: empty {', '.join(empty)}"
    if vals["lang"] not in LANGUAGES:
        return None, f"line {line}: {unknown_language_message(vals['lang'])}"
    try:
        acc = float(vals["accuracy"])
    except ValueError:
        return None, f"line {line}: accuracy '{vals['accuracy']}' is not a number"
    if not math.isfinite(acc) or not 0 <= acc <= 100:
        return None, f"line {line}: accuracy {vals['accuracy']} is outside 0–100 (percent)"
    n = None
    if vals["n"]:
        try:
            n = int(vals["n"])
        except ValueError:
            return None, f"line {line}: n '{vals['n']}' is not a whole number"
        if n < 1:
            return None, f"line {line}: n must be at least 1, got {n}"
    return Row(vals["model"], vals["benchmark"], vals["lang"], acc, n, line), None


def write_table(path: str | Path, rows: Iterable[Row]) -> Path:
    rows = list(rows)
    with_n = any(r.n is not None for r in rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*COLUMNS, "n"] if with_n else COLUMNS)
    for r in rows:
        acc = f"{r.accuracy:.4f}".rstrip("0").rstrip(".")
        w.writerow([r.model, r.benchmark, r.lang, acc] + ([r.n if r.n is not None else ""] if with_n else []))
    return atomic_write_text(path, buf.getvalue())
