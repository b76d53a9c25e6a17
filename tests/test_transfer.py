"""Recipe `transfer` end to end: exact MTI/Gen/TI, ID/OOD means, None cells, intervals, bad tables."""

import json

import numpy as np
import pytest

from xling.runs import cli

TABLE = """model,benchmark,lang,accuracy,n
base,math500,en,50,500
base,math500,de,20,500
base,math500,te,0,500
base,aime24,en,10,30
base,aime24,de,5,30
base,aime24,te,2,30
rl,math500,en,60,500
rl,math500,de,30,500
rl,math500,te,4,500
rl,aime24,en,20,30
rl,aime24,de,10,30
rl,aime24,te,6,30
"""


@pytest.fixture
def table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "acc.csv"
    p.write_text(TABLE)
    return p


def run(capsys, *args):
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_transfer_exact_values(capsys, table, tmp_path):
    rc, out, err = run(capsys, "transfer", f"table={table}", "base=base", "trained=rl", "train_langs=en", "out=o")
    assert rc == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    # math500: gains en 0.2, de 0.5, te undefined (base 0) -> TI de 2.5, te None
    assert m["ti"]["math500"] == {"de": pytest.approx(2.5), "te": None}
    assert m["mti"]["math500"] == pytest.approx(2.5)
    # aime24: gains en 1.0, de 1.0, te 2.0 -> TI 1.0, 2.0 -> MTI 1.5
    assert m["mti"]["aime24"] == pytest.approx(1.5)
    assert m["mti"]["avg"] == pytest.approx(2.0)
    assert m["mti"]["id"] == pytest.approx(2.5) and m["mti"]["ood"] == pytest.approx(1.5)
    assert m["gen"]["math500"] == pytest.approx(100 * (0.1 / 0.5 + 0.1 / 0.8 + 0.04 / 1.0) / 3)
    assert m["train_gain"]["aime24"] == pytest.approx(1.0)
    assert m["langs"] == {"math500": ["en", "de", "te"], "aime24": ["en", "de", "te"]}
    assert "None" in out and "MTI  avg 2.000" in out


def test_domain_keys_can_be_changed(capsys, table, tmp_path):
    rc, _, err = run(capsys, "transfer", f"table={table}", "base=base", "trained=rl", "out=o", "train_langs=en",
                     "in_domain=aime24", "out_of_domain=math500")
    assert rc == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["mti"]["id"] == pytest.approx(1.5) and m["mti"]["ood"] == pytest.approx(2.5)


def test_transfer_on_the_paper_replay_table(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "paper-replay", "plot=false")[0] == 0
    expected = [1.163, 2.496, 2.650, 3.002, 3.282, 3.482, 3.534, 3.631]
    order = ["ru", "fr", "es", "de", "bn", "th", "zh"]
    for k in (0, 1, 5, 7):
        folder = next((tmp_path / "runs").iterdir())
        rc, _, err = run(capsys, "transfer", f"table={folder}/accuracy.csv", "base=base", f"trained=k{k}", "train_langs=" + ",".join(["en", *order[:k]]), f"out=t{k}")
        assert rc == 0, err
        m = json.loads((tmp_path / f"t{k}" / "metrics.json").read_text())
        assert round(m["mti"]["math500"], 3) == expected[k]


def test_bootstrap_intervals_from_items(capsys, table, tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for model, accs in {"base": (0.5, 0.2, 0.1), "rl": (0.6, 0.3, 0.2)}.items():
        for bench in ("math500", "aime24"):
            for lang, p in zip(("en", "de", "te"), accs):
                for i in range(200):
                    rows.append({"model": model, "benchmark": bench, "lang": lang, "id": f"{bench}-{i}",
                                 "correct": bool(rng.random() < p)})
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, out, err = run(capsys, "transfer", f"table={table}", "base=base", "trained=rl", "out=o",
                       "train_langs=en", f"items={items}", "n_boot=200")
    assert rc == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    lo, hi = m["ci"]["mti"]["avg"]
    assert lo < hi
    assert set(m["ci"]["gen"]) == {"math500", "aime24"}
    assert m["ci"]["ti"]["math500"]["de"][0] < m["ci"]["ti"]["math500"]["de"][1]
    assert "[" in out  # intervals are printed


def test_intervals_cover_only_the_chosen_languages(capsys, table, tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for model, accs in {"base": (0.5, 0.2, 0.3), "rl": (0.6, 0.3, 0.1)}.items():
        for bench in ("math500", "aime24"):
            for lang, p in zip(("en", "de", "te"), accs):
                rows += [{"model": model, "benchmark": bench, "lang": lang, "id": str(i), "score": float(rng.random() < p)}
                         for i in range(300)]
    rows.append({"model": "rl", "benchmark": "math500", "lang": "en", "id": "bad", "score": 0, "error": "unparseable gold"})
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, _, err = run(capsys, "transfer", f"table={table}", "base=base", "trained=rl", "out=o", "train_langs=en",
                     "langs=en,de", f"items={items}", "n_boot=200")
    assert rc == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert set(m["ci"]["ti"]["math500"]) == {"de"}  # te, left out of the point estimate, is left out here too
    lo, hi = m["ci"]["mti"]["math500"]
    assert m["mti"]["math500"] == pytest.approx(2.5)
    assert lo <= 2.5 <= hi  # te (a loss, p .3 -> .1) would pull the interval below the estimate


@pytest.mark.parametrize(
    "extra,message",
    [
        (["base=nobody"], "has no rows for base model 'nobody'; models in it: base, rl"),
        (["train_langs=en,ru"], "training language(s) ru have no rows for benchmark math500"),
        (["benchmarks=gpqa"], "no rows for benchmark(s) gpqa"),
        (["langs=en,de,fr"], "lacks rows (base, math500, fr)"),
        (["trained=base"], "the trained and the base model are the same"),
    ],
)
def test_bad_comparisons(capsys, table, extra, message):
    args = ["transfer", f"table={table}", "base=base", "trained=rl", "out=o", "train_langs=en"]
    rc, _, err = run(capsys, *args, *extra)
    assert rc == 2 and message in err and err.count("\n") == 1


def test_items_missing_cells(capsys, table, tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"model": "base", "benchmark": "math500", "lang": "en", "id": "1", "correct": 1}) + "\n")
    rc, _, err = run(capsys, "transfer", f"table={table}", "base=base", "trained=rl", "out=o", "train_langs=en", f"items={items}")
    assert rc == 2 and "has no items for (base, math500, de)" in err
    items.write_text("{not json\n")
    rc, _, err = run(capsys, "transfer", f"table={table}", "base=base", "trained=rl", "out=o", "train_langs=en", f"items={items}")
    assert rc == 2 and "line 1: not valid JSON" in err


def test_items_with_a_bad_score_are_named(capsys, table, tmp_path):
    rows = [{"model": m, "benchmark": b, "lang": lang, "id": "q1", "correct": True}
            for m in ("base", "rl") for b in ("math500", "aime24") for lang in ("en", "de", "te")]
    rows[3]["correct"] = "yes"
    rows[5] = {**rows[5], "score": None}
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, _, err = run(capsys, "transfer", f"table={table}", "base=base", "trained=rl", "train_langs=en",
                     f"items={items}", "out=o")
    assert rc == 2 and "line(s) [4, 6] have a score|correct that is not true, false or a number from 0 to 1" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o" / "metrics.json").exists()


def test_relative_gains_get_intervals_too(capsys, table, tmp_path):
    rng = np.random.default_rng(1)
    rows = [{"model": m, "benchmark": b, "lang": lang, "id": f"{b}-{i}", "correct": bool(rng.random() < p)}
            for m, p in (("base", 0.4), ("rl", 0.5)) for b in ("math500", "aime24") for lang in ("en", "de", "te")
            for i in range(100)]
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, out, err = run(capsys, "transfer", f"table={table}", "base=base", "trained=rl", "train_langs=en",
                       f"items={items}", "n_boot=50", "out=o")
    assert rc == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    lo, hi = m["ci"]["gain"]["math500"]["de"]
    assert lo < hi and set(m["ci"]["gain"]["aime24"]) == {"en", "de", "te"}
    assert f"{m['gain']['math500']['de']:.3f} [{lo:.3f}, {hi:.3f}]" in out


def test_a_table_of_fractions_is_warned_about(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.csv").write_text("model,benchmark,lang,accuracy\nb,m,en,0.5\nb,m,de,0.2\nt,m,en,0.6\nt,m,de,0.3\n")
    rc, out, err = run(capsys, "transfer", "table=f.csv", "base=b", "trained=t", "train_langs=en", "out=o")
    assert rc == 0, err
    assert "every accuracy in f.csv is at most 1; accuracies are percentages (0–100)" in " ".join(out.split())
