"""Reporting: metrics with paired-bootstrap intervals, tables, figures (bars, TI heatmap, scaling), report.md."""

import json

import numpy as np
import pytest

from xling import metrics as M
from xling import report as R
from xling.table import AccuracyTable

LANGS = ["en", "de", "zh", "te"]


def items_for(model, benchmark, accs, n=40, seed=0, samples=1):
    """Per-item records whose accuracies are exactly `accs` (percent, multiples of 100/n)."""
    rng = np.random.default_rng(seed)
    out = []
    for lang, acc in accs.items():
        k = round(acc * n / 100)
        correct = np.zeros(n, bool)
        correct[rng.choice(n, k, replace=False)] = True
        for i in range(n):
            det = lang if i % 5 else "en"
            out.append({"model": model, "benchmark": benchmark, "lang": lang, "id": f"{benchmark}-{i}", "n": samples,
                        "score": float(correct[i]), "correct": bool(correct[i]), "extracted": "1",
                        "detected_lang": det, "on_target": det == lang, "truncated": i == 0,
                        "finish_reason": "length" if i == 0 else "stop", "tokens": 10})
    return out


BASE = {"mgsm": {"en": 50, "de": 25, "zh": 20, "te": 0}, "aime24": {"en": 10, "de": 5, "zh": 5, "te": 2.5}}
RL = {"mgsm": {"en": 60, "de": 35, "zh": 30, "te": 5}, "aime24": {"en": 20, "de": 10, "zh": 7.5, "te": 5}}


@pytest.fixture
def summary():
    items = []
    for b in BASE:
        items += items_for("base", b, BASE[b], seed=1) + items_for("rl", b, RL[b], seed=2)
    comps = {"rl": R.Comparison("rl", "base", ["en"])}
    return items, R.summarize(items, ["rl", "base"], {b: LANGS for b in BASE}, comps, n_boot=200, seed=0)


def test_summary_matches_transfer_metrics(summary):
    items, s = summary
    assert s.accuracy["rl"]["mgsm"]["de"] == pytest.approx(35)
    expected = M.transfer_metrics(RL, BASE, ["en"])
    r = s.comparisons["rl"]
    assert r["mti"]["mgsm"] == pytest.approx(expected["mti"]["mgsm"])
    assert r["mti"]["avg"] == pytest.approx(expected["mti"]["avg"])
    assert r["ti"]["mgsm"]["te"] is None  # base accuracy 0: undefined, never inf
    assert r["gen"]["aime24"] == pytest.approx(expected["gen"]["aime24"])
    lo, hi = r["ci"]["mti"]["avg"]
    assert lo <= r["mti"]["avg"] <= hi
    lo, hi = s.accuracy_ci["rl"]["mgsm"]["de"]
    assert lo < 35 < hi
    # every 5th answer is detected as English: 20% off-target except in English
    assert s.off_target["rl"]["mgsm"]["de"] == pytest.approx(20)
    assert s.off_target["rl"]["mgsm"]["en"] == pytest.approx(0)
    assert s.off_target_ci["rl"]["mgsm"]["de"][0] <= 20 <= s.off_target_ci["rl"]["mgsm"]["de"][1]
    assert s.cells["rl"]["mgsm"]["de"]["truncated"] == 1
    m = s.as_metrics()
    json.dumps(m)  # serialisable
    assert m["mti"]["avg"] == pytest.approx(expected["mti"]["avg"])


def test_outputs_tables_and_report(summary, tmp_path, capsys):
    items, s = summary
    files = R.write_outputs(tmp_path, items, s)
    table = AccuracyTable.read(files["accuracy"])
    assert table.get("rl", "mgsm", "de").accuracy == pytest.approx(35) and table.get("rl", "mgsm", "de").n == 40
    assert "model,benchmark,lang,off_target,judged,n,truncated" in files["off_target"].read_text()
    assert len(files["items"].read_text().splitlines()) == len(items)
    R.show(s)
    out = capsys.readouterr().out
    assert "accuracy %" in out and "off-target" in out and "MTI avg" in out and "None" in out
    figs = R.figures(tmp_path, s)
    assert {"accuracy_figure", "ti_heatmap_mgsm", "ti_heatmap_aime24"} <= set(figs)
    for path in figs.values():
        assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"
    md = R.write_markdown(tmp_path, s, figs, title="T").read_text()
    assert "![accuracy per language](figures/accuracy.png)" in md and "figures/ti_mgsm.png" in md
    assert "| lang | rl | base |" in md and "MTI avg" in md and "Truncated generations" in md


def test_scaling_figure_and_groups(tmp_path):
    base = {"en": 50, "de": 25, "zh": 20, "te": 10}
    items = items_for("base", "mgsm", base, n=40)
    names, scaling = [], {}
    for x in range(1, 7):
        accs = {l: min(100, v + 2.5 * x + (2.5 if l != "en" else 0)) for l, v in base.items()}
        name = f"k{x - 1}"
        items += items_for(name, "mgsm", accs, n=40, seed=x)
        names.append(name)
        scaling[name] = x
    train = {f"k{x - 1}": ["en", "de", "zh", "te"][:min(x, 3)] for x in range(1, 7)}
    comps = {n: R.Comparison(n, "base", train[n], "RL" if i % 2 else "SFT") for i, n in enumerate(names)}
    groups = {"RL": [n for i, n in enumerate(names) if i % 2], "SFT": [n for i, n in enumerate(names) if not i % 2]}
    s = R.summarize(items, [*names, "base"], {"mgsm": list(base)}, comps, n_boot=100, groups=groups)
    assert set(s.groups["mti"]) == {"RL", "SFT", "RL - SFT"}
    from xling import analysis as A

    members = [A.Member(n, "base", train[n], scaling[n], "RL" if i % 2 else "SFT") for i, n in enumerate(names)]
    study = A.analyze(items, members, {"mgsm": list(base)}, n_boot=100)
    figs = A.figures(tmp_path, study)
    assert "scaling_figure" in figs and figs["scaling_figure"].is_file()
    assert study.summary.groups["mti"]["RL"] == pytest.approx(s.groups["mti"]["RL"])
    figs = R.figures(tmp_path / "obs", s, observational=True)
    assert figs["mti_figure"].is_file()
    md = R.write_markdown(tmp_path, s, figs, title="obs").read_text()
    assert "By training paradigm" in md and "RL - SFT" in md


def test_missing_cell_is_an_error():
    items = items_for("base", "mgsm", {"en": 50})
    with pytest.raises(Exception, match=r"no scored items for \(rl, mgsm, en\)"):
        R.summarize(items, ["base", "rl"], {"mgsm": ["en"]}, {}, n_boot=10)
