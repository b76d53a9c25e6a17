"""Per-item files read column-wise: pyarrow's reader and the line reader agree or pyarrow declines;
transfer intervals equal the former implementation's; items.jsonl is written streamed and atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xling.analysis import items as I
from xling.perf.analysis import reference_intervals
from xling.common.errors import XlingError
from xling.common.io import atomic_write_jsonl, read_jsonl
from xling.evaluation.score import item_record
from xling.tasks import transfer


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _graded(correct, lang="de", error=None):
    return {"correct": correct, "truncated": False, "on_target": True, "extracted": "4", "detected_lang": lang,
            "finish_reason": "stop", "tokens": 12, "error": error}


def _evaluation_rows(n=30):
    """Records as evaluation writes them: one sample (booleans, strings) and 16 (counts, lists)."""
    rng = np.random.default_rng(0)
    rows = []
    for model, p in (("base", 0.4), ("rl", 0.55)):
        for lang in ("en", "de", "te"):
            for i in range(n):
                rows.append(item_record(model, "mgsm", lang, f"mgsm-{i}", "4", [_graded(rng.random() < p, lang)]))
                rows.append(item_record(model, "aime24", lang, f"aime-{i}", "4",
                                        [_graded(rng.random() < p / 2, lang) for _ in range(16)]))
    rows[5] = item_record("rl", "mgsm", "en", "mgsm-2", "?", [_graded(False, "en", "unparseable gold")])
    return rows


def _as_records(cols: I.ItemColumns) -> list[tuple]:
    """The columns as plain values, for comparing two readers whatever their codes."""
    def name(labels, code):
        return None if code < 0 else labels[code]

    return [(name(cols.models, m), name(cols.benchmarks, b), name(cols.langs, lg), name(cols.ids, i),
             None if np.isnan(s) else s, bool(v), bool(k), bool(u))
            for m, b, lg, i, s, v, k, u in zip(cols.model.tolist(), cols.benchmark.tolist(), cols.lang.tolist(),
                                                cols.id.tolist(), cols.score.tolist(), cols.valid, cols.lacks,
                                                cols.unparseable)]


def _agree(path) -> I.ItemColumns | None:
    """pyarrow's columns, after checking that they are the line reader's (or that pyarrow declined)."""
    quick = I._arrow_columns(path)
    if quick is None:
        return None
    assert quick.reader == "arrow"
    assert _as_records(quick) == _as_records(I._line_columns(path))
    return quick


def test_files_in_the_plain_layout_are_read_by_pyarrow_with_the_same_values(tmp_path):
    rows = _evaluation_rows()
    atomic_write_jsonl(tmp_path / "items.jsonl", rows)  # as report.write_outputs writes it
    cols = _agree(tmp_path / "items.jsonl")
    assert cols is not None and len(cols) == len(rows)
    assert cols.unparseable.sum() == 1 and cols.valid.all()
    scores = [r["score"] for r in rows]
    np.testing.assert_array_equal(cols.score, scores)

    correct = _write(tmp_path / "c.jsonl", [{"model": "m", "benchmark": "b", "lang": "en", "id": str(i),
                                             "correct": i % 3 == 0} for i in range(9)])
    assert _agree(correct).score.tolist() == [1.0, 0, 0] * 3
    numbers = _write(tmp_path / "n.jsonl", [{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "correct": 1},
                                            {"model": "m", "benchmark": "b", "lang": "de", "id": "q", "correct": 0}])
    assert _agree(numbers).score.tolist() == [1.0, 0.0]
    out_of_range = _write(tmp_path / "s.jsonl", [{"model": "m", "benchmark": "b", "lang": l, "id": "q", "score": s}
                                                 for l, s in (("en", 1.5), ("de", -0.25), ("fr", 0.75))])
    with open(out_of_range, "a") as f:
        f.write('{"model": "m", "benchmark": "b", "lang": "sw", "id": "q", "score": NaN}\n')  # json.dumps writes NaN
    cols = _agree(out_of_range)
    assert cols.valid.tolist() == [False, False, True, False] and np.isnan(cols.score[[0, 1, 3]]).all()
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + correct.read_bytes())
    assert _agree(bom) is not None


@pytest.mark.parametrize(
    "text",
    [
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "score": null, "correct": true}\n'
        '{"model": "m", "benchmark": "b", "lang": "de", "id": "q", "correct": true}\n',  # null is not absence
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "correct": true}\n\n',  # a blank line
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "correct": true}\r\n',  # CRLF
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "correct": true}\r'
        '{"model": "m", "benchmark": "b", "lang": "de", "id": "q", "correct": true}\n',  # a lone CR
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "correct": true}'
        '{"model": "m", "benchmark": "b", "lang": "de", "id": "q", "correct": true}\n',  # two objects, one line
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "correct": true}\nnull\n',  # pyarrow: a row
        'null\n',  # crashes pyarrow 26 (segmentation fault): must never reach it
        '{"model": "m", "benchmark": "b",\n "lang": "en", "id": "q", "correct": true}\n',  # one object, two lines
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "correct": true, "x": "\xff"}\n',  # not UTF-8
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "\\u0073core": 0.5}\n',  # an escaped key
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "score": 0.5, "score": 1}\n',  # twice
        '{"benchmark": "b", "lang": "en", "id": "q", "score": 0.5}\n',  # no model
        '{"model": 5, "benchmark": "b", "lang": "en", "id": "q", "score": 0.5}\n',  # not a string
        '{"model": null, "benchmark": "b", "lang": "en", "id": "q", "score": 0.5}\n',
        '{"model": "m", "benchmark": "b", "lang": "en", "id": 7, "score": 0.5}\n',  # a number id: "7"
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "score": true}\n',
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "score": 1, "x": 1e999}\n',
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "score": 1, "error": ["a", "unparseable gold"]}\n',
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q", "correct": true}\n'
        '{"model": "m", "benchmark": "b", "lang": "de", "id": "q", "correct": 1}\n',  # bool and number
        '{"model": "m", "benchmark": "b", "lang": "en", "id": "q"}\n',  # neither score nor correct
        "",
    ],
)
def test_pyarrow_declines_what_it_would_read_differently(tmp_path, text):
    path = tmp_path / "items.jsonl"
    path.write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text else text.encode("latin-1"))
    assert _agree(path) is None
    try:
        expected = _as_records(I._line_columns(path))
    except XlingError as e:
        with pytest.raises(XlingError, match="malformed line"):
            I.read_items(path)
        assert "line" in str(e)
    else:
        assert _as_records(I.read_items(path)) == expected


def test_what_the_line_reader_makes_of_odd_records(tmp_path):
    rows = [{"model": "m", "benchmark": "b", "lang": "en", "id": 7, "score": 0.5},
            {"model": "m", "benchmark": "b", "lang": "en", "id": "q", "score": None, "correct": True},
            {"model": 5, "benchmark": "b", "lang": "en", "id": "q", "correct": False},
            {"benchmark": "b", "lang": "en", "id": "q", "correct": False},
            {"model": "m", "benchmark": "b", "lang": "en", "id": "r", "score": 1, "error": "unparseable gold"}]
    assert _as_records(I.read_items(_write(tmp_path / "x.jsonl", rows))) == [
        ("m", "b", "en", "7", 0.5, True, False, False),
        ("m", "b", "en", "q", None, False, False, False),  # a null score is not a missing one
        (None, "b", "en", "q", 0.0, True, False, False),
        (None, "b", "en", "q", 0.0, True, True, False),
        ("m", "b", "en", "r", 1.0, True, False, True),
    ]


def test_read_items_errors(tmp_path):
    with pytest.raises(XlingError, match="no such file"):
        I.read_items(tmp_path / "none.jsonl")
    with pytest.raises(XlingError, match="is a folder; give the per-item JSONL file"):
        I.read_items(tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"model": "m"}\n{oops\n[1]\n')
    with pytest.raises(XlingError, match=r"2 malformed line\(s\): line 2: not valid JSON .*; line 3: not a JSON object"):
        I.read_items(tmp_path / "bad.jsonl")


def _cfg(items, **kw):
    return transfer.Config(table="-", base="base", trained="rl", train_langs=["en"], items=str(items),
                           **{"n_boot": 80, **kw})


@pytest.mark.parametrize("quick", [True, False])
def test_transfer_intervals_are_the_former_ones(tmp_path, monkeypatch, quick):
    monkeypatch.setattr(I, "ARROW_MIN_BYTES", 0 if quick else 1 << 60)
    if not quick:
        monkeypatch.delitem(__import__("sys").modules, "pyarrow.json", raising=False)
    rows = _evaluation_rows()
    rows += [{**r, "model": "other"} for r in rows[:40]]  # a model left out
    path = tmp_path / "items.jsonl"
    atomic_write_jsonl(path, rows)
    assert (I.read_items(path).reader == "arrow") is quick
    langs = {"mgsm": ["en", "de"], "aime24": ["en", "de", "te"]}
    ci = transfer.intervals(_cfg(path), langs)
    assert ci == reference_intervals(_cfg(path), langs)
    assert set(ci["ti"]["mgsm"]) == {"de"} and ci["mti"]["avg"][0] < ci["mti"]["avg"][1]


@pytest.mark.parametrize(
    "rows,message",
    [
        ([{"model": "base", "benchmark": "mgsm", "lang": "en", "id": "1"}],
         "line(s) [1] lack one of model, benchmark, lang, id, score|correct"),
        ([{"model": "base", "benchmark": "mgsm", "lang": "en", "id": "1", "correct": "yes"},
          {"model": "base", "benchmark": "mgsm", "lang": "en", "id": "2", "score": 2}],
         "line(s) [1, 2] have a score|correct that is not true, false or a number from 0 to 1"),
        ([{"model": "base", "benchmark": "mgsm", "lang": "en", "id": "1", "score": 1}],
         "has no items for (base, mgsm, de), (rl, mgsm, en), (rl, mgsm, de); intervals need every cell"),
    ],
)
def test_transfer_item_errors_are_the_former_ones(tmp_path, rows, message):
    path = _write(tmp_path / "items.jsonl", rows)
    langs = {"mgsm": ["en", "de"]}
    with pytest.raises(XlingError) as new:
        transfer.intervals(_cfg(path), langs)
    with pytest.raises(XlingError) as old:
        reference_intervals(_cfg(path), langs)
    assert str(new.value) == str(old.value) and message in str(new.value)


def test_items_jsonl_is_streamed_and_atomic(tmp_path):
    path = tmp_path / "items.jsonl"
    rows = _evaluation_rows(3)
    atomic_write_jsonl(path, rows)
    assert read_jsonl(path) == json.loads(json.dumps(rows))

    def failing():
        yield rows[0]
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        atomic_write_jsonl(path, failing())
    assert read_jsonl(path) == json.loads(json.dumps(rows))  # the finished file is kept
    assert [p.name for p in tmp_path.iterdir()] == ["items.jsonl"]  # and no temporary file is left


@pytest.mark.parametrize("block", [1, 2, 5, 17, 100])
def test_the_layout_check_does_not_depend_on_block_boundaries(tmp_path, monkeypatch, block):
    good = tmp_path / "good.jsonl"
    atomic_write_jsonl(good, _evaluation_rows(2))
    text = good.read_bytes()
    variants = {
        "good": text,
        "no final newline": text[:-1],
        "blank line": text.replace(b"}\n{", b"}\n\n{", 1),
        "space before newline": text.replace(b"}\n{", b"} \n{", 3),
        "crlf": text.replace(b"}\n{", b"}\r\n{"),
        "escape": text.replace(b'"lang"', b'"l\\u0061ng"', 1),
        "bad utf-8": text.replace(b"mgsm-1", b"mgsm-\xe9", 1),
        "cut utf-8": text.replace(b"mgsm-1", "mgsm-\u00e9".encode()[:-1] + b"x", 1),
    }
    words = [b'"score"', b'"correct"', b"unparseable gold", b'"absent"']
    whole = {}
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        whole[name] = I._scan(tmp_path / name, words)
    assert whole["good"] == I._Layout(len(text.splitlines()), {w: w != b'"absent"' for w in words})
    assert whole["no final newline"] == whole["good"]
    assert all(whole[name] is None for name in variants if name not in ("good", "no final newline"))
    monkeypatch.setattr(I, "SCAN_BLOCK", block)
    assert {name: I._scan(tmp_path / name, words) for name in variants} == whole
