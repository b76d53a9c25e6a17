"""The accuracy table: round trip and every kind of bad table."""

import pytest

from xling.common.errors import XlingError
from xling.report.table import AccuracyTable, Row, write_table


def write(tmp_path, text, name="acc.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_round_trip(tmp_path):
    rows = [Row("base", "mgsm", "en", 50.0, 250), Row("rl", "mgsm", "en", 62.4, 250), Row("rl", "mgsm", "de", 33.333, None)]
    path = write_table(tmp_path / "t.csv", rows)
    table = AccuracyTable.read(path)
    got = [(r.model, r.benchmark, r.lang, r.accuracy, r.n) for r in table.rows]
    assert got == [("base", "mgsm", "en", 50.0, 250), ("rl", "mgsm", "en", 62.4, 250), ("rl", "mgsm", "de", 33.333, None)]
    assert path.read_text().splitlines()[0] == "model,benchmark,lang,accuracy,n"
    assert table.models() == ["base", "rl"] and table.benchmarks() == ["mgsm"]


def test_extra_columns_and_bom_are_fine(tmp_path):
    p = write(tmp_path, "\ufeffmodel, benchmark,lang,accuracy,off_target\nm,b,en,10,3\n")
    assert AccuracyTable.read(p).get("m", "b", "en").accuracy == 10.0


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "is empty"),
        ("model,benchmark,lang,accuracy\n", "has a header but no rows"),
        ("model,benchmark,accuracy\nm,b,50\n", "lacks column\\(s\\) lang"),
        ("model,benchmark,lang,accuracy\nm,b,en,abc\n", "line 2: accuracy 'abc' is not a number"),
        ("model,benchmark,lang,accuracy\nm,b,en,50\nm,b,de,130\n", "line 3: accuracy 130 is outside 0–100"),
        ("model,benchmark,lang,accuracy\nm,b,en,-1\n", "outside 0–100"),
        ("model,benchmark,lang,accuracy\nm,b,xx,50\n", "line 2: unknown language 'xx'"),
        ("model,benchmark,lang,accuracy\nm,,en,50\n", "line 2: empty benchmark"),
        ("model,benchmark,lang,accuracy,n\nm,b,en,50,0\n", "n must be at least 1"),
        ("model,benchmark,lang,accuracy\nm,b,en,50\nm,b,de,50\nm,b,en,51\n",
         r"duplicate rows \(m, b, en\) at lines 2 and 4"),
    ],
)
def test_bad_tables(tmp_path, text, message):
    with pytest.raises(XlingError, match=message):
        AccuracyTable.read(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(XlingError, match="does not exist"):
        AccuracyTable.read(tmp_path / "nope.csv")


TABLE = """model,benchmark,lang,accuracy
base,mgsm,en,50
base,mgsm,de,20
base,mgsm,sw,10
rl,mgsm,en,60
rl,mgsm,de,30
rl,mgsm,sw,20
"""


def test_comparison_checks(tmp_path):
    table = AccuracyTable.read(write(tmp_path, TABLE))
    benchmarks, langs = table.comparison("base", "rl", ["en"])
    assert benchmarks == ["mgsm"] and langs == {"mgsm": ["en", "de", "sw"]}
    with pytest.raises(XlingError, match="no rows for base model 'nope'; models in it: base, rl"):
        table.comparison("nope", "rl", ["en"])
    with pytest.raises(XlingError, match="training language\\(s\\) ru have no rows for benchmark mgsm"):
        table.comparison("base", "rl", ["en", "ru"])
    with pytest.raises(XlingError, match="no rows for benchmark\\(s\\) aime24"):
        table.comparison("base", "rl", ["en"], benchmarks=["aime24"])
    with pytest.raises(XlingError, match="no language outside train_langs"):
        table.comparison("base", "rl", ["en", "de", "sw"])


def test_comparison_names_missing_rows(tmp_path):
    table = AccuracyTable.read(write(tmp_path, TABLE + "rl,mgsm,te,5\nrl,aime24,en,3\n"))
    with pytest.raises(XlingError, match=r"lacks rows \(base, mgsm, te\); \(base, aime24, en\)"):
        table.comparison("base", "rl", ["en"])


def test_a_table_that_is_not_utf8_is_named(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"model,benchmark,lang,accuracy\nm,b,en,\xff\n")
    with pytest.raises(XlingError, match=r"t.csv is not UTF-8 text \(byte 38\); save it as UTF-8"):
        AccuracyTable.read(p)
