"""Reporting: metrics with paired-bootstrap intervals, tables, figures (bars, TI heatmap, scaling), report.md."""

import json

import numpy as np
import pytest

from xling.analysis import metrics as M
from xling.analysis import summary as S
from xling.report import results as R
from xling.report.table import AccuracyTable

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
    comps = {"rl": S.Comparison("rl", "base", ["en"])}
    return items, S.summarize(items, ["rl", "base"], {b: LANGS for b in BASE}, comps, n_boot=200, seed=0)


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
    comps = {n: S.Comparison(n, "base", train[n], "RL" if i % 2 else "SFT") for i, n in enumerate(names)}
    groups = {"RL": [n for i, n in enumerate(names) if i % 2], "SFT": [n for i, n in enumerate(names) if not i % 2]}
    s = S.summarize(items, [*names, "base"], {"mgsm": list(base)}, comps, n_boot=100, groups=groups)
    assert set(s.groups["mti"]) == {"RL", "SFT", "RL - SFT"}
    from xling.analysis import members as AM
    from xling.analysis import study as A
    from xling.report import study as RS

    members = [AM.Member(n, "base", train[n], scaling[n], "RL" if i % 2 else "SFT") for i, n in enumerate(names)]
    study = A.analyze(items, members, {"mgsm": list(base)}, n_boot=100)
    figs = RS.figures(tmp_path, study)
    assert "scaling_figure" in figs and figs["scaling_figure"].is_file()
    assert study.summary.groups["mti"]["RL"] == pytest.approx(s.groups["mti"]["RL"])
    figs = R.figures(tmp_path / "obs", s, observational=True)
    assert figs["mti_figure"].is_file()
    md = R.write_markdown(tmp_path, s, figs, title="obs").read_text()
    assert "By training paradigm" in md and "RL - SFT" in md


def test_missing_cell_is_an_error():
    items = items_for("base", "mgsm", {"en": 50})
    with pytest.raises(Exception, match=r"no scored items for \(rl, mgsm, en\)"):
        S.summarize(items, ["base", "rl"], {"mgsm": ["en"]}, {}, n_boot=10)


def _judged_items(model, judged, wrong, n=40):
    """n items per language; the first judged[lang] have a detected language, wrong[lang] of them English."""
    out = []
    for lang, k in judged.items():
        for i in range(n):
            det = None if i >= k else ("en" if i < wrong.get(lang, 0) else lang)
            out.append({"model": model, "benchmark": "mgsm", "lang": lang, "id": f"mgsm-{i}", "n": 1,
                        "score": float(i % 2), "correct": bool(i % 2), "extracted": "1", "detected_lang": det,
                        "on_target": None if det is None else det == lang, "truncated": False,
                        "finish_reason": "stop", "tokens": 10})
    return out


def test_a_rate_judged_on_too_few_answers_is_undetermined_everywhere(tmp_path, capsys, monkeypatch):
    """A cell judged on fewer than MIN_JUDGED answers has no rate and no interval, in every output, and
    every rate shows the answers it rests on."""
    assert S.MIN_JUDGED == 10
    items = (_judged_items("base", {"en": 40, "de": 40, "te": 40}, {"de": 4, "te": 8})
             + _judged_items("rl", {"en": 40, "de": 10, "te": 3}, {"de": 2, "te": 3}))
    comps = {"rl": S.Comparison("rl", "base", ["en"])}
    s = S.summarize(items, ["base", "rl"], {"mgsm": ["en", "de", "te"]}, comps, n_boot=50, seed=0)
    assert s.off_target["rl"]["mgsm"]["te"] is None  # 3 judged answers, all English: not "100.0"
    assert "te" not in s.off_target_ci["rl"]["mgsm"]
    assert s.off_target["rl"]["mgsm"]["de"] == pytest.approx(20.0)  # exactly 10 judged: determined
    assert s.off_target_judged["rl"]["mgsm"] == {"en": 40, "de": 10, "te": 3}
    assert s.mean_off_target["rl"] == pytest.approx(10.0)  # (0 + 20) / 2: the undetermined cell left out
    assert s.mean_off_target_judged == {"base": 120, "rl": 50}
    m = json.loads(json.dumps(s.as_metrics()))
    assert m["off_target"]["rl"]["mgsm"]["te"] is None and m["off_target_judged"]["rl"]["mgsm"]["te"] == 3
    assert m["cells"]["rl"]["mgsm"]["te"]["off_target"] is None and m["cells"]["rl"]["mgsm"]["te"]["judged"] == 3
    assert m["off_target_min_judged"] == 10
    files = R.write_outputs(tmp_path, items, s)
    assert "rl,mgsm,te,,3,40,0" in files["off_target"].read_text().splitlines()
    R.show(s)
    out = capsys.readouterr().out
    import re

    ci = r"\[[\d.]+, [\d.]+\]"
    assert re.search(rf"^\s*te\s+20\.0 {ci} \(n=40\)\s+undetermined \(n=3\)\s*$", out, re.M)
    assert re.search(rf"^\s*de\s+10\.0 {ci} \(n=40\)\s+20\.0 {ci} \(n=10\)\s*$", out, re.M)
    md = R.write_markdown(tmp_path, s, {}, title="T").read_text()
    assert re.search(r"^\| te \| 20\.0 \[[\d.]+, [\d.]+\] \(n=40\) \| undetermined \(n=3\) \|$", md, re.M)
    figures = []
    monkeypatch.setattr("xling.report.plots.save_figure", lambda fig, path: figures.append(fig) or path)
    R.plot_off_target_bars(s, tmp_path / "off.png")
    fig = figures[0]
    marks = [line for ax in fig.axes for line in ax.lines if line.get_marker() == "x"]
    assert len(marks) == 1 and len(marks[0].get_xdata()) == 1  # one cross: rl in te, no bar
    assert any("undetermined (fewer than 10" in t.get_text() for t in fig.texts)
    from xling.analysis import members as AM
    from xling.analysis import study as A
    from xling.report import study as RS

    study = A.analyze(items, [AM.Member("rl", "base", ["en"], None)], {"mgsm": ["en", "de", "te"]}, n_boot=50)
    row = RS.member_rows(study)[0]
    assert row[-1].startswith("90.0 [") and row[-1].endswith("] (n=50)")
    only = [r for r in items if r["lang"] == "te"]
    study = A.analyze(only, [AM.Member("rl", "base", ["en"], None)], {"mgsm": ["te"]}, n_boot=50)
    assert RS.member_rows(study)[0][-1] == "undetermined (n=0)"
