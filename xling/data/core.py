"""The uniform example type every loader returns, gold-answer normalisers, and the local JSONL format.

An `Example` is one problem in one language. The same problem has the same `id` in every
language, so parallel data is "same id, different `lang`". `kind` says how its answer is graded:
`number` (MGSM, MSVAMP, GSM8K: a plain number), `math` (MATH, MATH500, AIME: a LaTeX answer),
`choice` (GPQA: a letter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

from xling.common.errors import XlingError
from xling.common.io import atomic_write_jsonl, iter_jsonl
from xling.data.languages import LANGUAGES, unknown_language_message

KINDS = ("number", "math", "choice")
REQUIRED = ("id", "lang", "question", "answer")


@dataclass
class Example:
    """One problem in one language."""

    id: str
    lang: str
    question: str
    answer: str
    kind: str = "number"
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "lang": self.lang, "question": self.question, "answer": self.answer,
                "kind": self.kind, "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, rec: dict[str, Any]) -> "Example":
        return cls(id=str(rec["id"]), lang=rec["lang"], question=rec["question"], answer=str(rec["answer"]),
                   kind=rec.get("kind", "number"), meta=dict(rec.get("meta") or {}))

    @property
    def solution(self) -> str | None:
        """A worked solution (for SFT), when the source has one."""
        return self.meta.get("solution")


# -- gold answers ------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")
_GROUPED = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")  # 2,125 or 1,234,567.5: thousands commas


def _plain(text: str) -> str:
    """Currency and spaces removed; commas removed only where they group thousands."""
    s = text.replace("$", "").replace(" ", "").replace("\u00a0", "")
    return s.replace(",", "") if _GROUPED.match(s) else s


def normalize_number(text: Any) -> str:
    """A numeric gold answer in one canonical form: '2,125' -> '2125', '8.0' -> '8', '$5' -> '5'.

    Text that is not a plain number is returned stripped and otherwise unchanged.
    """
    raw = str(text).strip()
    s = _plain(raw)
    if not _NUMBER.match(s):
        return raw
    try:
        value = Decimal(s)
    except InvalidOperation:
        return raw
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def is_number(text: Any) -> bool:
    return bool(_NUMBER.match(_plain(str(text).strip())))


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, nested braces included."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


_CHOICE = re.compile(r"^\W*\(?([A-J])\)?\W*$")


def normalize_choice(text: Any) -> str:
    """A multiple-choice gold answer as one capital letter: '(B)', 'B)', '\\boxed{B}' -> 'B'."""
    raw = str(text).strip()
    inner = last_boxed(raw) or raw
    m = _CHOICE.match(inner) or re.search(r"(?:answer|Answer)\s*(?:is|:)\s*\(?([A-J])\b", raw)
    return m.group(1) if m else raw


def infer_kind(answer: str) -> str:
    return "number" if is_number(answer) else "math"


# -- the uniform local JSONL -------------------------------------------------------------------

def check_lang(code: Any, where: str) -> str:
    if code not in LANGUAGES:
        raise XlingError(f"{where}: {unknown_language_message(code)}")
    return code


def example_from_record(rec: dict[str, Any], where: str) -> Example:
    """An Example from a record with the uniform fields; other fields go to `meta`."""
    missing = [k for k in REQUIRED if k not in rec or rec[k] is None or str(rec[k]).strip() == ""]
    if missing:
        hint = "; a MATH-style record (problem, solution, type, level)? use source=math" if "problem" in rec else ""
        raise XlingError(
            f"{where}: missing field{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}; "
            f"every record needs {', '.join(REQUIRED)} (optional: kind, meta, solution, type, level){hint}"
        )
    lang = check_lang(rec["lang"], where)
    answer = str(rec["answer"]).strip()
    kind = rec.get("kind") or infer_kind(answer)
    if kind not in KINDS:
        raise XlingError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "number":
        answer = normalize_number(answer)
    elif kind == "choice":
        answer = normalize_choice(answer)
    meta = dict(rec.get("meta") or {})
    for k, v in rec.items():
        if k not in (*REQUIRED, "kind", "meta"):
            meta[k] = v
    return Example(id=str(rec["id"]), lang=lang, question=str(rec["question"]), answer=answer, kind=kind, meta=meta)


def jsonl_records(path: Path) -> list[tuple[int, dict]]:
    """(line, record) pairs of a JSON Lines file; a malformed line or an empty file is an error."""
    if not path.is_file():
        raise XlingError(f"{path}: no such file; check the path")
    rows, bad = [], []
    for lineno, rec, err in iter_jsonl(path):
        if err:
            bad.append(f"line {lineno}: {err}")
        else:
            rows.append((lineno, rec))
    if bad:
        raise XlingError(f"{path}: {len(bad)} malformed line(s): {'; '.join(bad[:3])}; fix or remove them")
    if not rows:
        raise XlingError(f"{path} is empty: it needs one JSON object per line")
    return rows


def is_uniform(rec: dict[str, Any]) -> bool:
    """Whether a record looks like the uniform format (id, lang, question, answer)."""
    return all(k in rec for k in ("lang", "question")) and "id" in rec


def read_examples(path: str | Path) -> list[Example]:
    """Read a uniform JSONL file (id, lang, question, answer[, kind, meta, ...])."""
    path = Path(path)
    return [example_from_record(rec, f"{path} line {n}") for n, rec in jsonl_records(path)]


def write_examples(path: str | Path, examples: Iterable[Example]) -> Path:
    """Write examples as uniform JSONL, atomically."""
    return atomic_write_jsonl(path, (e.to_dict() for e in examples))
