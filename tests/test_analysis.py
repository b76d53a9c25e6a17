"""The one analysis of a study: scaling fits, leap and gap with intervals; the analyze task on tables and folders."""

import json

import numpy as np
import pytest

from xling.analysis import members as AM
from xling.analysis import study as A
from xling.report import study as RS
from xling.common.errors import XlingError

from test_report import items_for


def test_scaling_of_an_exact_power_law():
    by_x = {x: 1.5 * x ** 0.4 for x in range(2, 7)}
    by_x[1] = 1.0  # English only, below the curve's f(1) = 1.5
    r = A.scaling_of(by_x, fit_from=2)
    assert r["alpha"] == pytest.approx(1.5, abs=1e-6) and r["beta"] == pytest.approx(0.4, abs=1e-6)
    assert r["r2"] == pytest.approx(1.0)
    assert r["gap"] == pytest.approx(0.5, abs=1e-6)  # f(1) - English only
    assert r["leap"] == pytest.approx(1.5 * 2 ** 0.4 - 1.0)
    assert r["x"] == [1, 2, 3, 4, 5, 6] and r["note"] is None
    assert r["fit"]["x"] == [2, 3, 4, 5, 6]


def test_scaling_of_too_few_points_says_why_and_keeps_the_leap():
    r = A.scaling_of({1: 1.0, 2: 2.5, 4: 3.0}, fit_from=2)  # k = 0, 1, 3: any set of X is analysed
    assert r["fit"] is None and r["alpha"] is None and r["gap"] is None
    assert r["leap"] == pytest.approx(1.5)
    assert "three distinct X >= 2" in r["note"] and "X = 2, 4" in r["note"]
    r = A.scaling_of({1: 1.0, 2: None, 3: 2.0, 4: 2.2, 5: 2.4})
    assert r["leap"] is None and r["x"] == [1, 3, 4, 5] and r["fit"] is not None  # undefined values left out


def test_curve_members():
    m = [AM.Member("a", "b", ["en"], 1), AM.Member("c", "b", ["en", "ru"], 2), AM.Member("d", "b", ["en", "de"], 2)]
    on, why = AM.curve_members(m)
    assert on == [] and "c and d both have X = 2" in why
    m[2].x = None  # off the curve
    on, why = AM.curve_members(m)
    assert [x.name for x in on] == ["a", "c"] and why is None
    assert AM.curve_members([AM.Member("a", "b", ["en"], 1), AM.Member("c", "b", ["de"], 1)]) == ([], None)


def _study_items(n=40):
    base = {"en": 50, "de": 25, "zh": 20, "te": 10}
    items = items_for("base", "mgsm", base, n=n)
    members = []
    order = ["en", "de", "zh"]
    for x in range(1, 5):
        accs = {l: min(100, v + 5 * x) for l, v in base.items()}
        name = f"k{x - 1}"
        items += items_for(name, "mgsm", accs, n=n, seed=x)
        members.append(AM.Member.of(name, "base", order[:min(x, 3)], x, "RL" if x % 2 else "SFT"))
    members[-1] = AM.Member("k3", "base", order, 4, "SFT")  # X given explicitly (3 languages, X = 4)
    return items, members, {"mgsm": list(base)}


def test_study_with_items_has_intervals_for_fits_leap_and_gap():
    items, members, langs = _study_items()
    study = A.analyze(items, members, langs, n_boot=200, seed=0)
    s = study.scaling
    assert set(s) == {"mti", "accuracy"}
    acc = s["accuracy"]
    # the mean accuracies are exact (items_for makes them so): 26.25 + 5·X
    assert acc["y"] == pytest.approx([31.25, 36.25, 41.25, 46.25])
    assert acc["leap"] == pytest.approx(5.0)
    expected = A.scaling_of({x: 26.25 + 5 * x for x in range(1, 5)})
    assert acc["alpha"] == pytest.approx(expected["alpha"]) and acc["gap"] == pytest.approx(expected["gap"])
    for key in ("alpha", "beta", "leap", "gap"):
        lo, hi = acc["ci"][key]
        assert lo <= acc[key] <= hi and lo < hi
    mti = s["mti"]
    assert mti["x"] == [1, 2, 3, 4] and mti["alpha"] is not None
    assert mti["y"][0] == pytest.approx(study.summary.comparisons["k0"]["mti"]["avg"])
    # paradigms group the members; the metrics file carries all of it
    assert set(study.summary.groups["mti"]) == {"RL", "SFT", "RL - SFT"}
    m = study.as_metrics()
    json.dumps(m)
    assert m["members"]["k3"]["x"] == 4 and m["scaling"]["accuracy"]["ci"]["leap"]


def test_study_outputs(tmp_path, capsys):
    items, members, langs = _study_items()
    study = A.analyze(items, members, langs, n_boot=100)
    RS.show(study)
    out = capsys.readouterr().out
    assert "Parallel Scaling Law" in out and "members: trained models vs their base" in out
    figs = RS.figures(tmp_path, study)
    assert {"accuracy_figure", "off_target_figure", "scaling_figure", "ti_heatmap_mgsm"} <= set(figs)
    for p in figs.values():
        assert p.read_bytes()[:4] == b"\x89PNG"
    md = RS.write_report(tmp_path, study, figs, "T").read_text()
    assert "## Parallel scaling" in md and "figures/scaling.png" in md and "## Members" in md
    assert "figures/off_target.png" in md and "paper" in md


def test_non_contiguous_members_are_said_in_words(tmp_path):
    items, members, langs = _study_items()
    keep = {"base", "k0", "k1", "k3"}
    items = [r for r in items if r["model"] in keep]
    members = [m for m in members if m.name in keep]  # X = 1, 2, 4
    study = A.analyze(items, members, langs, n_boot=50)
    assert study.scaling["accuracy"]["fit"] is None and study.scaling["accuracy"]["leap"] == pytest.approx(5.0)
    assert any("this study has X = 2, 4" in n for n in study.notes)
    figs = RS.figures(tmp_path, study)
    assert "scaling_figure" not in figs  # never a degenerate curve
    md = RS.write_report(tmp_path, study, figs, "T").read_text()
    assert "this study has X = 2, 4" in md


def test_members_file_round_trip_and_errors(tmp_path):
    members = [AM.Member("k0", "base", ["en"], 1, None), AM.Member("k1u", "base", ["en", "ru"], None, "RL")]
    p = AM.write_members(tmp_path / "models.csv", members)
    assert p.read_text() == "model,base,train_langs,x,paradigm\nk0,base,en,1,\nk1u,base,en+ru,,RL\n"
    assert AM.read_members(p) == members
    p.write_text("model,base,train_langs,x\nk1,base,en+xx,2\n")
    with pytest.raises(XlingError, match=r"line 2: unknown language 'xx'"):
        AM.read_members(p)
    p.write_text("model,base\nk1,base\n")
    with pytest.raises(XlingError, match="lacks column\\(s\\) train_langs"):
        AM.read_members(p)
    p.write_text("model,base,train_langs,x\nk1,base,en,two\n")
    with pytest.raises(XlingError, match="x 'two' is not a whole number"):
        AM.read_members(p)
    p.write_text("")
    with pytest.raises(XlingError, match="is empty"):
        AM.read_members(p)


def test_analyze_on_the_paper_replay_table(run_cli, tmp_path, capsys):
    assert run_cli("paper-replay", "plot=false", "out=runs/paper-replay") == 0
    capsys.readouterr()
    assert run_cli("analyze", "plots=false", "out=runs/analyze") == 0  # the recipe's default: runs/paper-replay/accuracy.csv
    out = capsys.readouterr().out
    m = json.loads((tmp_path / "runs" / "analyze" / "metrics.json").read_text())
    mti = m["scaling"]["mti"]
    assert round(mti["alpha"], 2) == 2.00 and round(mti["beta"], 3) == 0.295
    assert mti["leap"] == pytest.approx(2.496 - 1.163, abs=1e-3) and mti["gap"] == pytest.approx(0.837, abs=1e-3)
    acc = m["scaling"]["accuracy"]
    assert round(acc["alpha"], 2) == 56.99 and round(acc["beta"], 3) == 0.020
    assert m["comparisons"]["k5"]["mti"]["avg"] == pytest.approx(3.482, abs=5e-4)
    assert "2.00 ± 0.08" in out and "no per-item results" in (tmp_path / "runs" / "analyze" / "report.md").read_text()
    # paper-replay reports the same recomputed fit through the same code
    replay = json.loads((tmp_path / "runs" / "paper-replay" / "metrics.json").read_text())
    assert replay["fit"]["mti_recomputed"]["alpha"] == pytest.approx(mti["alpha"])


def test_analyze_table_with_items_and_inline_members(run_cli, tmp_path):
    items, members, langs = _study_items(n=20)
    from xling.report import results as R

    study = A.analyze(items, members, langs, n_boot=10)
    R.write_outputs(tmp_path / "src", items, study.summary)
    rc = run_cli("analyze", f"table={tmp_path}/src/accuracy.csv", f"items={tmp_path}/src/items.jsonl", "n_boot=50",
                 "plots=false", "members=[{name: k1, base: base, train_langs: [en, de]}, "
                                "{name: k2, base: base, train_langs: [en, de, zh], x: none}]")
    assert rc == 0
    m = json.loads((tmp_path / "runs").glob("analyze-*").__next__().joinpath("metrics.json").read_text())
    assert set(m["comparisons"]) == {"k1", "k2"} and m["scaling"] is None  # one X on the curve: no curve
    assert m["comparisons"]["k1"]["ci"]["mti"]["avg"] is not None
    assert m["off_target"]["k1"]["mgsm"]["de"] == pytest.approx(20)


@pytest.mark.parametrize("args,message", [
    ([], "give evaluation run folders"),
    (["table=nope.csv"], "accuracy table nope.csv does not exist"),
    (["evals=nowhere"], "evaluation folder nowhere does not exist"),
    (["table=t.csv", "items=i.jsonl", "evals=a"], "give either evals= or table="),
    (["table=t.csv", "base=zz"], "base 'zz' has no results here"),
    (["table=t.csv", "members=[{name: k1, base: base, train_langs: [en, xx]}]"], "unknown language 'xx'"),
    (["table=t.csv", "members=[{name: k9, base: base}]"], "model 'k9' is a member or base but has no results"),
])
def test_analyze_refuses_bad_input(run_cli, tmp_path, capsys, args, message):
    (tmp_path / "t.csv").write_text("model,benchmark,lang,accuracy\nbase,mgsm,en,50\nbase,mgsm,de,40\n"
                                    "k1,mgsm,en,60\nk1,mgsm,de,45\n")
    rc = run_cli("analyze", "table=null", *args)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_analyze_eval_folders_need_finished_evaluations(run_cli, tmp_path, capsys):
    (tmp_path / "e").mkdir()
    assert run_cli("analyze", "table=null", "evals=e") == 2
    assert "holds no finished evaluation" in capsys.readouterr().err


def test_bootstrap_refits_in_every_replicate():
    """The interval of α comes from refitting resampled MTIs: a study whose per-item noise is zero has none."""
    base = {"en": 50, "de": 50}
    items = []
    for m, acc in (("base", base), ("k0", {"en": 60, "de": 55}), ("k1", {"en": 60, "de": 60}),
                   ("k2", {"en": 70, "de": 70}), ("k3", {"en": 80, "de": 80})):
        for lang, a in acc.items():
            # every item identical within a cell: resampling cannot move the accuracy
            items += [{"model": m, "benchmark": "mgsm", "lang": lang, "id": f"i{i}", "score": a / 100, "n": 1,
                       "detected_lang": lang, "truncated": False, "extracted": "1", "tokens": 5} for i in range(10)]
    members = [AM.Member("k0", "base", ["en"], 1), AM.Member("k1", "base", ["en"], 2),
               AM.Member("k2", "base", ["en"], 3), AM.Member("k3", "base", ["en"], 4)]
    study = A.analyze(items, members, {"mgsm": ["en", "de"]}, n_boot=20)
    ci = study.scaling["accuracy"]["ci"]["alpha"]
    assert ci[0] == pytest.approx(ci[1]) == pytest.approx(study.scaling["accuracy"]["alpha"])
    assert np.isfinite(study.scaling["accuracy"]["beta"])


def test_contrasts_table_languages_and_on_target_rate(tmp_path, capsys):
    base = {"en": 50, "zh": 25, "de": 20, "te": 10}
    items = items_for("base", "mgsm", base, n=40)
    items += items_for("rl", "mgsm", {"en": 60, "zh": 40, "de": 30, "te": 15}, n=40, seed=2)
    items += items_for("sft", "mgsm", {"en": 55, "zh": 30, "de": 25, "te": 10}, n=40, seed=3)
    members = [AM.Member("rl", "base", ["de"], None, "RL"), AM.Member("sft", "base", ["de"], None, "SFT")]
    study = A.analyze(items, members, {"mgsm": list(base)}, n_boot=200, contrasts={"RL − SFT (de)": ["rl", "sft"]},
                      table_langs=["en", "zh", "de"])
    gen = lambda t: 100 * sum((t[l] - base[l]) / (100 - base[l]) for l in base) / 4  # noqa: E731
    rl = {"en": 60, "zh": 40, "de": 30, "te": 15}
    sft = {"en": 55, "zh": 30, "de": 25, "te": 10}
    assert study.point["gen"]["rl"] == pytest.approx(gen(rl))
    c = study.point["contrasts"]["RL − SFT (de)"]
    assert c["gen"] == pytest.approx(gen(rl) - gen(sft))
    assert c["accuracy"] == pytest.approx((145 - 120) / 4)
    lo, hi = study.ci["contrasts"]["RL − SFT (de)"]["gen"]
    assert lo <= c["gen"] <= hi
    assert study.point["langs"]["sft"] == {"en": 55, "zh": 30, "de": 25}
    # every 5th answer is detected as English (items_for): on-target 80% outside English, 100% in it
    assert study.summary.mean_off_target["rl"] == pytest.approx(15.0)
    RS.show(study)
    out = capsys.readouterr().out
    assert "acc en %" in out and "85.0" in out and "RL − SFT (de)" in out
    md = RS.write_report(tmp_path, study, {}, "T").read_text()
    assert "## Contrasts" in md
    m = study.as_metrics()
    assert m["contrasts"]["RL − SFT (de)"]["a"] == "rl" and m["gen_avg"]["sft"] == pytest.approx(gen(sft))
    with pytest.raises(XlingError, match="contrast 'x' must name two members"):
        A.analyze(items, members, {"mgsm": list(base)}, n_boot=10, contrasts={"x": ["rl", "nope"]})


def test_a_fit_interval_beyond_a_thousand_times_the_data_is_shown_unbounded():
    from xling.report.study import bounded_ci

    r = {"y": [0.5, None, -2.0]}
    assert bounded_ci([-2001.0, 1999.0], r) == [float("-inf"), 1999.0]
    assert bounded_ci([-5.0, 2e9], r) == [-5.0, float("inf")]
    assert bounded_ci([-900.0, 900.0], {"y": [0.1]}) == [-900.0, 900.0]  # the limit is at least 1,000
    assert bounded_ci(None, r) is None and bounded_ci([None, None], r) == [None, None]


def test_analyze_reads_items_in_the_minimal_form_transfer_reads(run_cli, tmp_path):
    """Per-item results with only model, benchmark, lang, id and correct (the README's form), beside an
    accuracy table: analyze gives the same intervals as from score= records, as transfer does."""
    import random

    rng = random.Random(5)
    rows, table = [], ["model,benchmark,lang,accuracy,n"]
    for model, p in (("base", 0.4), ("k1", 0.6)):
        for lang in ("en", "de", "zh"):
            correct = [rng.random() < p for _ in range(30)]
            rows += [{"model": model, "benchmark": "mgsm", "lang": lang, "id": str(i), "correct": c}
                     for i, c in enumerate(correct)]
            table.append(f"{model},mgsm,{lang},{100 * sum(correct) / 30},30")
    (tmp_path / "T.csv").write_text("\n".join(table) + "\n", encoding="utf-8")
    (tmp_path / "I.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    scored = [{k: v for k, v in r.items() if k != "correct"} | {"score": float(r["correct"])} for r in rows]
    (tmp_path / "S.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scored), encoding="utf-8")
    results = []
    for items in ("I.jsonl", "S.jsonl"):
        rc = run_cli("analyze", f"table={tmp_path / 'T.csv'}", f"items={tmp_path / items}", "base=base",
                     "train_langs=en", "n_boot=50", "plots=false", f"out=a-{items}")
        assert rc == 0
        results.append(json.loads((tmp_path / f"a-{items}" / "metrics.json").read_text()))
    assert results[0]["comparisons"]["k1"]["ci"] == results[1]["comparisons"]["k1"]["ci"]
    assert results[0]["comparisons"]["k1"]["ci"]["mti"]["avg"] is not None
    assert run_cli("transfer", f"table={tmp_path / 'T.csv'}", f"items={tmp_path / 'I.jsonl'}", "base=base",
                   "trained=k1", "train_langs=en", "n_boot=50", "out=t") == 0


def test_the_analysis_computes_and_renders_nothing():
    """Statistics live in xling/analysis (one mean_accuracy), which imports no rendering: no console, no
    figures, nothing of xling.report."""
    import ast
    from pathlib import Path

    import xling.analysis
    from xling.analysis import summary, study as analysis_study

    rendering = ("xling.report", "xling.common.console", "matplotlib", "rich")
    for path in Path(xling.analysis.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.startswith(rendering)], f"{path.name} imports {names}"
    assert summary.mean_accuracy({"m": {"b": {"en": 10.0, "de": 30.0}}}, "m", {"b": ["en", "de"]}) == 20.0
    assert summary.mean_accuracy({"m": {"b": {"en": 10.0}}}, "m", {"b": ["en", "de"]}) is None
    assert analysis_study.S is summary  # the study's summary is the analysis's own
    import xling.report.study as rendered

    assert not hasattr(rendered, "analyze") and not hasattr(rendered, "_mean_accuracy")
