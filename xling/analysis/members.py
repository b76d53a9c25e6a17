"""A study's members: the trained models it compares, each with its base, training languages, X and paradigm.

In: members given as data (by a sweep, an evaluation, a recipe's `members:`) or read from a models.csv
(`read_members`: model, base, train_langs as en+ru, x, paradigm). Out: checked `Member` records
(`check_members`), the members on the scaling curve (`curve_members`), and models.csv (`write_members`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from xling.common.errors import XlingError

@dataclass
class Member:
    """A trained model of a study and what it is compared with."""

    name: str
    base: str
    train_langs: list[str]
    x: int | None = None  # training languages on the scaling curve (None: not on the curve)
    paradigm: str | None = None

    @classmethod
    def of(cls, name: str, base: str, train_langs: Sequence[str], x: int | None | str = "auto",
           paradigm: str | None = None) -> "Member":
        """`x="auto"`: the number of training languages."""
        langs = list(train_langs)
        return cls(name, base, langs, len(langs) if x == "auto" else x, paradigm or None)


def curve_members(members: Sequence[Member]) -> tuple[list[Member], str | None]:
    """The members on the scaling curve, or ([], why not) when the study has no curve.

    A study has a curve when its members differ in X; two members at one X make the curve ambiguous.
    """
    on = [m for m in members if m.x is not None]
    if len({m.x for m in on}) < 2:
        return [], None
    by_x: dict[int, list[str]] = {}
    for m in on:
        by_x.setdefault(int(m.x), []).append(m.name)
    clash = {x: ns for x, ns in by_x.items() if len(ns) > 1}
    if clash:
        x, names = sorted(clash.items())[0]
        return [], (f"no scaling curve: {' and '.join(names)} both have X = {x}; the curve takes one model per "
                    "number of training languages (set x to null for the others)")
    return on, None


def check_members(members: Sequence[Member], models: Sequence[str]) -> None:
    names = [m.name for m in members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise XlingError(f"model '{dupes[0]}' is listed twice as a trained model; give each member its own name")
    for m in members:
        for role, name in (("trained", m.name), ("base", m.base)):
            if name not in models:
                raise XlingError(f"{role} model '{name}' (of member '{m.name}') has no results here; models with "
                                 f"results: {', '.join(models)}")
        if m.name == m.base:
            raise XlingError(f"member '{m.name}' is compared with itself; give it another base")
        if m.x is not None and m.x < 1:
            raise XlingError(f"member '{m.name}': X (training languages, English included) must be at least 1")


MEMBER_FILE_COLUMNS = ("model", "base", "train_langs", "x", "paradigm")


def write_members(path: Path, members: Sequence[Member]) -> Path:
    """models.csv: one row per trained model (model, base, train_langs as en+ru, x, paradigm)."""
    import csv
    import io

    from xling.common.io import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MEMBER_FILE_COLUMNS)
    for m in members:
        w.writerow([m.name, m.base, "+".join(m.train_langs), "" if m.x is None else m.x, m.paradigm or ""])
    return atomic_write_text(path, buf.getvalue())


def read_members(path: str | Path) -> list[Member]:
    """Read a models.csv (see `write_members`). `x` empty: off the scaling curve; `auto`: len(train_langs)."""
    import csv
    import io
    import re

    from xling.common.io import read_text
    from xling.data.languages import LANGUAGES, unknown_language_message

    path = Path(path)
    if not path.is_file():
        raise XlingError(f"members file {path} does not exist")
    text = read_text(path)
    if not text.strip():
        raise XlingError(f"members file {path} is empty; it needs a header {','.join(MEMBER_FILE_COLUMNS)} and rows")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in ("model", "base", "train_langs") if c not in header]
    if missing:
        raise XlingError(f"members file {path} lacks column(s) {', '.join(missing)}; expected "
                         f"{','.join(MEMBER_FILE_COLUMNS)}")
    members = []
    for rec in reader:
        line = reader.line_num
        vals = {k: (rec.get(k) or "").strip() for k in MEMBER_FILE_COLUMNS}
        if not any(vals.values()):
            continue
        if not vals["model"] or not vals["base"] or not vals["train_langs"]:
            raise XlingError(f"members file {path}, line {line}: model, base and train_langs are required")
        langs = [c for c in re.split(r"[+,;\s]+", vals["train_langs"]) if c]
        bad = [c for c in langs if c not in LANGUAGES]
        if bad:
            raise XlingError(f"members file {path}, line {line}: {unknown_language_message(bad[0])}")
        x: int | None | str
        if vals["x"].lower() == "auto":
            x = "auto"
        elif vals["x"] == "":
            x = None
        else:
            try:
                x = int(vals["x"])
            except ValueError:
                raise XlingError(f"members file {path}, line {line}: x '{vals['x']}' is not a whole number "
                                 "(or empty: off the scaling curve)") from None
        members.append(Member.of(vals["model"], vals["base"], langs, x, vals["paradigm"] or None))
    if not members:
        raise XlingError(f"members file {path} has a header but no rows")
    return members

