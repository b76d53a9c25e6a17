"""Per-item results read column-wise: a JSON Lines file straight into arrays, no record kept.

`read_items(path)` gives `ItemColumns`: for every record, in file order, codes of its model,
benchmark, language and id (into lists of names), its score (`score`, else `correct`), and whether
it lacks a key, holds a valid score and is marked "unparseable gold". `ItemColumns.item_scores`
turns a selection of them into the bootstrap's `xling.analysis.metrics.ItemScores`.

The line-by-line reader (`json` per line) defines what every record means and names malformed
lines. Files in the layout that xling and `json.dumps` per line write (one object per line, `{` to
`}`, `\\n` endings, UTF-8, no `\\u` escapes of printable ASCII) are read by pyarrow's JSON reader
instead, taking only the columns needed (the other fields, whatever their types, are skipped);
wherever the two could differ (a null that might be an absent key, a key that is not a string, an
`id` that is a number, anything pyarrow refuses) the line-by-line reader reads the file.
"""

from __future__ import annotations

import codecs
import math
import re
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from xling.grading.answers import UNPARSEABLE_GOLD
from xling.common.errors import XlingError
from xling.common.io import iter_jsonl, malformed_lines_error

KEYS = ("model", "benchmark", "lang", "id")
ARROW_MIN_BYTES = 1 << 23  # below this (pyarrow not yet imported), lines are read before pyarrow imports
SCAN_BLOCK = 1 << 24  # bytes read at once when checking the layout
NEWLINE, OPEN, CLOSE = ord("\n"), ord("{"), ord("}")


@dataclass
class ItemColumns:
    """Per-item records as columns, one entry per record in file order.

    `model`, `benchmark`, `lang` and `id` are codes into `models`, `benchmarks`, `langs` and `ids`
    (-1 where the record lacks the key or, for the first three, its value is not a string; an id
    is written as text, as `str` would). `score` is the record's `score`, else its `correct` (true
    is 1), NaN where that is missing or not valid; `valid`: it is true, false or a number from 0
    to 1; `lacks`: one of model, benchmark, lang, id and score|correct is missing; `unparseable`:
    the record's `error` is "unparseable gold".
    """

    model: np.ndarray
    benchmark: np.ndarray
    lang: np.ndarray
    id: np.ndarray
    score: np.ndarray
    valid: np.ndarray
    lacks: np.ndarray
    unparseable: np.ndarray
    models: list[str]
    benchmarks: list[str]
    langs: list[str]
    ids: list[str]
    reader: str = "lines"  # "arrow" where pyarrow read the file

    def __len__(self) -> int:
        return len(self.score)

    def selected(self, models: Sequence[str], langs: dict[str, Sequence[str]]) -> np.ndarray:
        """Mask of the records of these models whose language is one of their benchmark's."""
        model_ok = np.array([m in set(models) for m in self.models] + [False], dtype=bool)
        pair_ok = np.zeros((len(self.benchmarks) + 1, len(self.langs) + 1), dtype=bool)
        for b, name in enumerate(self.benchmarks):
            wanted = set(langs.get(name, ()))
            pair_ok[b, :-1] = [lang in wanted for lang in self.langs]
        return model_ok[self.model] & pair_ok[self.benchmark, self.lang]  # code -1 picks the False row/column

    def item_scores(self, mask: np.ndarray | None = None):
        """`xling.analysis.metrics.ItemScores` of the records in `mask` (all by default), which must hold
        every key and a valid score."""
        from xling.analysis.metrics import ItemScores

        cols = [self.model, self.benchmark, self.lang, self.id, self.score]
        if mask is not None:
            cols = [c[mask] for c in cols]
        if len(cols[0]) and (min(int(c.min()) for c in cols[:4]) < 0 or np.isnan(cols[4]).any()):
            raise ValueError("item_scores takes records that hold every key and a valid score")
        return ItemScores.from_columns(*cols, self.models, self.benchmarks, self.langs, self.ids)


def valid_score(value) -> bool:
    """A score|correct value xling accepts: true, false, or a number from 0 to 1."""
    if isinstance(value, bool):
        return True
    return isinstance(value, (int, float)) and 0 <= value <= 1


def read_items(path: str | Path) -> ItemColumns:
    """Read a per-item JSONL file into columns; a malformed line is an XlingError naming its line."""
    path = Path(path)
    if not path.exists():
        raise XlingError(f"{path}: no such file")
    if path.is_dir():
        raise XlingError(f"{path} is a folder; give the per-item JSONL file (e.g. RUN/items.jsonl)")
    quick = None
    if path.stat().st_size >= ARROW_MIN_BYTES or "pyarrow.json" in sys.modules:
        quick = _arrow_columns(path)
    return quick if quick is not None else _line_columns(path)


# ------------------------------------------------------------------------------ line by line


def _line_columns(path: Path) -> ItemColumns:
    tables: list[dict[str, int]] = [{}, {}, {}, {}]
    codes = [array("q") for _ in KEYS]
    score, flags = array("d"), [array("b"), array("b"), array("b")]  # valid, lacks, unparseable
    bad = []
    for lineno, rec, err in iter_jsonl(path):
        if err:
            bad.append(f"line {lineno}: {err}")
            continue
        for key, table, column in zip(KEYS, tables, codes):
            if key == "id" and key in rec:
                column.append(table.setdefault(str(rec[key]), len(table)))
            elif isinstance(rec.get(key), str):
                column.append(table.setdefault(rec[key], len(table)))
            else:
                column.append(-1)
        value = rec["score"] if "score" in rec else rec.get("correct")
        ok = valid_score(value)
        score.append(float(value) if ok else math.nan)
        flags[0].append(ok)
        flags[1].append(any(k not in rec for k in KEYS) or ("score" not in rec and "correct" not in rec))
        flags[2].append(rec.get("error") == UNPARSEABLE_GOLD)
    if bad:
        raise malformed_lines_error(path, bad)
    return ItemColumns(*(np.array(c, dtype=np.int64) for c in codes), np.array(score, dtype=np.float64),
                       *(np.array(f, dtype=bool) for f in flags), *(list(t) for t in tables))


# ------------------------------------------------------------------------------ pyarrow


_ASCII_ESCAPE = re.compile(rb"\\u00[2-7][0-9a-fA-F]")  # a printable ASCII character written as \u00XX


@dataclass
class _Layout:
    lines: int
    has: dict[bytes, bool]


def _scan(path: Path, words: Sequence[bytes]) -> _Layout | None:
    """The file's line count and which of `words` it holds, when it is in the plain layout (see
    the module docstring): UTF-8, no carriage return, no `\\u00XX` escape of printable ASCII, each
    line one `{...}` (the first may start with a byte-order mark); None otherwise."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    has = {w: False for w in words}
    lines = 0
    tail = b""  # the last bytes read before this block, for matches across the boundary
    with open(path, "rb") as f:
        block = f.read(SCAN_BLOCK)
        body = block[len(codecs.BOM_UTF8):] if block.startswith(codecs.BOM_UTF8) else block
        if not body.startswith(b"{"):
            return None  # empty, or not an object first
        while block:
            try:
                if not block.isascii() or decoder.getstate()[0]:
                    decoder.decode(block)
            except UnicodeDecodeError:
                return None
            if b"\r" in block:
                return None
            edge = tail + block[:16]
            if (b"\\" in block or b"\\" in edge) and (_ASCII_ESCAPE.search(block) or _ASCII_ESCAPE.search(edge)):
                return None
            for w in words:
                has[w] = has[w] or w in block or w in edge
            # every newline is preceded by "}" and followed by "{" (or the end of the file)
            arr = np.frombuffer(block, dtype=np.uint8)
            at = np.flatnonzero(arr == NEWLINE)
            if tail.endswith(b"\n") and arr[0] != OPEN:
                return None
            if len(at) and at[0] == 0 and not tail.endswith(b"}"):
                return None
            if np.any(arr[at[at > 0] - 1] != CLOSE) or np.any(arr[at[at < len(arr) - 1] + 1] != OPEN):
                return None
            lines += len(at)
            tail = (tail + block[-16:])[-16:]
            block = f.read(SCAN_BLOCK)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    if tail[-1:] not in (b"}", b"\n"):
        return None
    return _Layout(lines + (tail[-1:] != b"\n"), has)


def _arrow_columns(path: Path) -> ItemColumns | None:
    """Columns read by pyarrow, or None where the line-by-line reader must read the file."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.json as pj
    except ImportError:
        return None
    layout = _scan(path, [b'"score"', b'"correct"', UNPARSEABLE_GOLD.encode()])
    if layout is None:
        return None
    fields = [(k, pa.string()) for k in KEYS]
    if layout.has[UNPARSEABLE_GOLD.encode()]:
        fields.append(("error", pa.string()))
    if layout.has[b'"score"']:
        tries = [("score", pa.float64())]
    elif layout.has[b'"correct"']:  # no record has a score key: each takes its correct
        tries = [("correct", pa.bool_()), ("correct", pa.float64())]
    else:
        return None
    for name, kind in tries:
        try:
            table = pj.read_json(path, parse_options=pj.ParseOptions(
                explicit_schema=pa.schema(fields + [(name, kind)]), unexpected_field_behavior="ignore"))
            break
        except pa.ArrowException:
            continue
    else:
        return None
    if table.num_rows != layout.lines or any(table.column(c).null_count for c in (*KEYS, name)):
        return None
    codes, labels = [], []
    for key in KEYS:
        chunks = pc.dictionary_encode(table.column(key)).chunks  # one dictionary for all chunks
        dictionary = chunks[0].dictionary if chunks else pa.array([], pa.string())
        if any(not c.dictionary.equals(dictionary) for c in chunks):
            return None
        codes.append(np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks]).astype(np.int64)
                     if chunks else np.zeros(0, np.int64))
        labels.append(dictionary.to_pylist())
    value = table.column(name).to_numpy().astype(np.float64)
    valid = np.ones(len(value), dtype=bool) if kind == pa.bool_() else (value >= 0) & (value <= 1)
    score = np.where(valid, value, np.nan)
    if "error" in table.column_names:
        unparseable = pc.fill_null(pc.equal(table.column("error"), UNPARSEABLE_GOLD), False).to_numpy()
    else:
        unparseable = np.zeros(len(value), dtype=bool)
    return ItemColumns(*codes, score, valid, np.zeros(len(value), dtype=bool), np.asarray(unparseable, dtype=bool),
                       *labels, reader="arrow")
