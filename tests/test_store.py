"""The one resumable store (xling.common.store): keyed records, append, a torn tail, a fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from xling.common.errors import XlingError
from xling.common.io import repair_tail
from xling.common.store import Store, fingerprint


def lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_the_last_record_of_a_key_wins(tmp_path):
    store = Store(tmp_path / "s.jsonl", key=("id", "lang"))
    store.append([{"id": "a", "lang": "de", "v": 1}, {"id": "a", "lang": "ru", "v": 2}])
    store.append([{"id": "a", "lang": "de", "v": 3}])
    assert store.records == {("a", "de"): {"id": "a", "lang": "de", "v": 3}, ("a", "ru"): {"id": "a", "lang": "ru", "v": 2}}
    again = Store(tmp_path / "s.jsonl", key=("id", "lang"))
    assert again.get(("a", "de")) == {"id": "a", "lang": "de", "v": 3} and len(again) == 2 and again.damaged == 0
    assert len(lines(tmp_path / "s.jsonl")) == 3  # appended, never rewritten


def test_a_torn_tail_is_not_read_and_is_cut_before_the_next_append(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a", "v": 1}\n{"id": "b", "v": 2}\n{"id": "c", "v"', encoding="utf-8")
    store = Store(path, key="id")
    assert list(store) == ["a", "b"] and store.damaged == 1
    assert path.read_text(encoding="utf-8").endswith('{"id": "c", "v"')  # reading never writes
    store.append([{"id": "c", "v": 3}])
    assert lines(path) == ['{"id": "a", "v": 1}', '{"id": "b", "v": 2}', '{"id": "c", "v": 3}']
    assert Store(path, key="id").records == {"a": {"id": "a", "v": 1}, "b": {"id": "b", "v": 2}, "c": {"id": "c", "v": 3}}


def test_a_complete_record_without_its_newline_counts_as_torn(tmp_path):
    """A kill between a line's text and its newline: not read, so what is read is what survives the repair."""
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}', encoding="utf-8")
    assert list(Store(path, key="id")) == ["a"]
    assert repair_tail(path) == len('{"id": "b"}') and path.read_text(encoding="utf-8") == '{"id": "a"}\n'
    assert repair_tail(path) == 0


def test_damaged_and_keyless_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a"}\nnot json\n[1, 2]\n{"no": "id"}\n\n{"id": "b", "text": 1}\n', encoding="utf-8")
    store = Store(path, key="id", valid=lambda rec: "text" in rec)
    assert list(store) == ["b"] and store.damaged == 4  # not JSON, not an object, no key, not valid


def test_a_store_made_with_other_settings_is_never_reused(tmp_path):
    path = tmp_path / "s.jsonl"
    first = Store(path, key="id", fingerprint=fingerprint({"temperature": 0.7}), about={"input": "x.jsonl"})
    first.append([{"id": "a", "v": 1}])
    assert json.loads(lines(path)[0]) == {"fingerprint": fingerprint({"temperature": 0.7}), "input": "x.jsonl"}
    assert Store(path, key="id", fingerprint=fingerprint({"temperature": 0.7})).records == {"a": {"id": "a", "v": 1}}
    other = Store(path, key="id", fingerprint=fingerprint({"temperature": 0.9}))
    assert other.records == {} and other.stale
    assert len(lines(path)) == 2  # reading a stale file leaves it as it was
    other.append([{"id": "b", "v": 2}])
    assert [json.loads(x) for x in lines(path)] == [{"fingerprint": fingerprint({"temperature": 0.9})}, {"id": "b", "v": 2}]
    assert Store(path, key="id", fingerprint=fingerprint({"temperature": 0.7})).records == {}
    # a file without a fingerprint line (written before stores had one) is not reused either
    path.write_text('{"id": "c"}\n', encoding="utf-8")
    old = Store(path, key="id", fingerprint=fingerprint({"temperature": 0.9}))
    assert old.records == {} and old.stale


def test_append_after_a_crash_keeps_every_finished_record(tmp_path):
    """A kill mid-append (the last line torn): a new store on the file reads the finished records, and its
    next append starts on a line of its own after them, the fingerprint line kept."""
    path = tmp_path / "s.jsonl"
    key = fingerprint({"n": 4})
    Store(path, key="id", fingerprint=key).append([{"id": "a"}, {"id": "b"}])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"id": "c", "sam')
    store = Store(path, key="id", fingerprint=key)
    assert list(store) == ["a", "b"] and store.damaged == 1 and not store.stale
    store.append([{"id": "c"}])
    assert lines(path) == [json.dumps({"fingerprint": key}), '{"id": "a"}', '{"id": "b"}', '{"id": "c"}']
    assert list(Store(path, key="id", fingerprint=key)) == ["a", "b", "c"]


def test_rewrite_replaces_the_whole_file_and_remove_deletes_it(tmp_path):
    path = tmp_path / "deep" / "s.jsonl"
    store = Store(path, key="id", fingerprint="k")
    store.append([{"id": "a"}])
    store.rewrite([{"id": "b"}, {"id": "c"}])
    assert lines(path) == ['{"fingerprint": "k"}', '{"id": "b"}', '{"id": "c"}'] and list(store) == ["b", "c"]
    assert [p.name for p in path.parent.iterdir()] == ["s.jsonl"]  # no temporary file left
    store.remove()
    assert not path.exists() and len(store) == 0


def test_a_record_without_its_key_is_refused_before_anything_is_written(tmp_path):
    store = Store(tmp_path / "s.jsonl", key="id")
    with pytest.raises(KeyError):
        store.append([{"id": "a"}, {"no": "id"}])
    assert not (tmp_path / "s.jsonl").exists()


def test_a_store_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(XlingError, match=r"^cannot write in .*file: it \(or a part of its path\) is a file"):
        Store(tmp_path / "file" / "s.jsonl", key="id").append([{"id": "a"}])


def test_fingerprint_is_stable_and_sized():
    assert fingerprint({"b": 1, "a": [1, 2]}) == fingerprint({"a": [1, 2], "b": 1})
    assert fingerprint({"a": 1}) == "e4ad4daad53a2eec" and fingerprint({"a": 1}, 10) == "e4ad4daad5"
    # the digest that names existing caches (completion folders, RFT samples, graded lines) is unchanged
    settings = {"model": "m", "temperature": 0.7, "path": Path("/x"), "langs": ["de", "ru"]}
    old = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    assert fingerprint(settings) == old[:16] and fingerprint(settings, 10) == old[:10]
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_a_finished_store_is_read_without_opening_it_for_writing(tmp_path, monkeypatch):
    """A finished cache on a read-only disk: reading it, and the tail check before an append, only read."""
    import builtins

    path = tmp_path / "s.jsonl"
    Store(path, key="id").append([{"id": "a"}])
    real_open, modes = builtins.open, []

    def spy(file, mode="r", *args, **kwargs):
        modes.append(mode)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    assert list(Store(path, key="id")) == ["a"] and repair_tail(path) == 0
    assert modes == ["rb", "rb"]
