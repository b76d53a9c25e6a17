"""The one resumable store: a JSON Lines file of keyed records that grows as each unit of work finishes.

    store = Store(path, key=("id", "lang"), fingerprint=fingerprint(settings))
    store.get(("q1", "de"))        # the last record of that key, or None
    store.append(records)          # appended and flushed to disk: a kill loses at most the records in flight
    store.rewrite(records)         # the whole file replaced at once (through a temporary file and a rename)

- Keyed records: `key` names the field (or the fields, or a function of the record) that identifies
  a record; the last record of a key wins, so a unit of work done again replaces the earlier one
  without rewriting the file.
- A torn tail: a kill in the middle of an append leaves a last line without its newline. It is not
  read (it counts as damaged) and it is cut off before the next append, so that new records start
  on a line of their own. A line that is not a JSON object, or whose key cannot be read, is skipped
  and counted in `damaged` too: its unit of work is done again.
- A fingerprint: a store whose records depend on settings that its path does not name gives
  `fingerprint=fingerprint(settings)`; its first line then holds it (`{"fingerprint": ...}`). A file
  whose first line holds another fingerprint, or none, was made with other settings: none of its
  records is read (`stale` is true), and the first write replaces the whole file, so that its
  records are never reused. Stores whose settings are in their folder's name (completion shards,
  pivot references) give none, and check each record themselves (its prompt, question or digest).

Reading never writes (a finished store on a read-only disk can be read); a write that the system
refuses (full disk, read-only place) is a one-line XlingError naming the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Iterator

from xling.common.io import append_jsonl, atomic_write_jsonl, iter_jsonl

FINGERPRINT = "fingerprint"  # the field of a store's first line that holds its fingerprint
IN_NAMES = 10  # the hex digits of a fingerprint that names a folder (a cache of a model, of settings)


def fingerprint(obj: Any, size: int = 16) -> str:
    """A short hash (`size` hex digits) of any JSON-able value, the same on every machine and run:
    dict keys sorted, values JSON cannot hold written as text."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:size]


Key = str | tuple[str, ...] | Callable[[dict], Hashable]


def _key_function(key: Key) -> Callable[[dict], Hashable]:
    if callable(key):
        return key
    if isinstance(key, str):
        return lambda rec: rec[key]
    fields = tuple(key)
    return lambda rec: tuple(rec[f] for f in fields)


class Store:
    """The keyed records of one JSON Lines file (see the module docstring).

    `valid`: a test a record must pass to be read (others count as damaged); `about`: fields written
    beside the fingerprint on the first line (what the store was made from, for a reader of the file).
    """

    def __init__(self, path: str | Path, key: Key, *, fingerprint: str | None = None, about: dict | None = None,
                 valid: Callable[[dict], bool] | None = None):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.about = dict(about or {})
        self._key = _key_function(key)
        self._valid = valid
        self._records: dict[Hashable, dict] | None = None
        self._damaged = 0
        self._stale = False
        self._header = False  # the file starts with this store's fingerprint line

    # -- reading ------------------------------------------------------------------------------------

    def _load(self) -> dict[Hashable, dict]:
        if self._records is not None:
            return self._records
        records: dict[Hashable, dict] = {}
        damaged, stale, header = 0, False, False
        if self.path.is_file():
            first = True
            for _, rec, err in iter_jsonl(self.path, whole_lines=True):
                if first and self.fingerprint is not None:
                    first = False
                    if rec is not None and rec.get(FINGERPRINT) == self.fingerprint:
                        header = True
                        continue
                    stale = True  # made with other settings (or before stores had fingerprints)
                    break
                first = False
                if err or rec is None:
                    damaged += 1
                    continue
                try:
                    if self._valid is not None and not self._valid(rec):
                        raise ValueError
                    records[self._key(rec)] = rec
                except (KeyError, TypeError, ValueError):
                    damaged += 1
        self._records, self._damaged, self._stale, self._header = records, damaged, stale, header
        return records

    @property
    def records(self) -> dict[Hashable, dict]:
        """key -> the last record of that key (in the order keys first appeared)."""
        return self._load()

    @property
    def damaged(self) -> int:
        """Lines that could not be read: a torn last line, a line that is not a JSON object, no key."""
        self._load()
        return self._damaged

    @property
    def stale(self) -> bool:
        """Whether the file there was made with another fingerprint (its records are not read)."""
        self._load()
        return self._stale

    def get(self, key: Hashable, default: Any = None) -> Any:
        return self._load().get(key, default)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._load()

    def __len__(self) -> int:
        return len(self._load())

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._load())

    def values(self) -> Iterable[dict]:
        return self._load().values()

    # -- writing ------------------------------------------------------------------------------------

    def _header_line(self) -> list[dict]:
        return [] if self.fingerprint is None else [{FINGERPRINT: self.fingerprint, **self.about}]

    def append(self, records: Iterable[dict]) -> None:
        """Append records (a torn last line cut first) and flush them to disk. A stale file, or a new
        one of a store with a fingerprint, is first replaced by the fingerprint line alone."""
        records = list(records)
        keys = [self._key(r) for r in records]  # a record without its key is a bug of the caller: before writing
        if self.fingerprint is not None:
            self._load()
            if not self._header:
                self.rewrite([])
        append_jsonl(self.path, records)
        if self._records is not None:  # else read from the file when first asked
            self._records.update(zip(keys, records))

    def rewrite(self, records: Iterable[dict]) -> None:
        """Replace the whole file by these records (after the fingerprint line, if any), atomically."""
        records = list(records)
        keys = [self._key(r) for r in records]
        atomic_write_jsonl(self.path, self._header_line() + records)
        self._records = dict(zip(keys, records))
        self._damaged, self._stale, self._header = 0, False, self.fingerprint is not None

    def remove(self) -> None:
        """Delete the file (e.g. once its records are written elsewhere as a finished result)."""
        self.path.unlink(missing_ok=True)
        self._records, self._damaged, self._stale, self._header = {}, 0, False, False
