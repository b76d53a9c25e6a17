"""The classroom demo (`python run.py demo`): its plan, its bad input, a GGUF model in its plan, and a
shrunken demo end to end (pretraining, GRPO x2, evaluation, analysis, the explanation), reproducible
and resumed without redoing anything."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from xling.tasks import demo as D

# A toy that pretrains in seconds (it answers little or nothing; the demo's own toy is ToyConfig())
SMALL_TOY = ["toy.examples=48", "toy.vocab_size=400", "toy.hidden_size=32", "toy.layers=1", "toy.heads=2",
             "toy.kv_heads=1", "toy.intermediate_size=64", "toy.batch_size=16", "toy.epochs=1"]
SHRUNK = [*SMALL_TOY, "ks=0,1", "langs=en,ru,de", "problems=4", "max_tokens=8", "n_boot=50",
          "set.train.max_steps=1", "set.train.questions_per_step=2", "set.train.batch_size=4",
          "set.grpo.num_generations=2", "set.grpo.max_prompt_length=256", "set.data.n=8"]


def test_the_plan_lists_the_four_members_and_their_languages(run_cli, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))  # no toy built yet
    assert run_cli("demo", "--dry-run") == 0
    out = capsys.readouterr().out
    recipe = yaml.safe_load(out)  # the plan is YAML comments: the output stays a recipe
    assert recipe["task"] == "demo" and recipe["model"] == "toy" and recipe["ks"] == [0, 1, 2, 3]
    assert "# base model: toy, pretrained on this machine first (about three and a half minutes on 2 cores), then cached" in out
    for k, member in enumerate(("en", "en+ru", "en+ru+fr", "en+ru+fr+es")):
        assert f"#   {member}: grpo-parallel data.k={k}\n#       train langs {member} (X={k + 1}); vs base" in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


@pytest.mark.parametrize("args, message", [
    (["ks=0,0"], "key 'ks': give distinct numbers of parallel languages"),
    (["ks=9"], "key 'ks': k=9: give 0 to 7"),
    (["order=xx"], "key 'order': unknown language 'xx'"),
    (["order=en,ru"], "key 'order': give distinct parallel languages other than en"),
    (["langs=en,xx"], "key 'langs': "),
    (["toy.nope=1"], "unknown recipe key 'toy.nope'"),
    (["toy.examples=x"], "toy.examples"),
    (["toy.slip=1.5"], "key 'toy.slip': is a share of the solutions, in [0, 1)"),
    (["problems=0"], "key 'problems': must be at least 1"),
    (["problems=2001"], "key 'problems': at most 2000"),
    (["set.data.k=5"], "key 'set.data.k': is set by the demo (ks=...); leave it out of set"),
])
def test_bad_input_is_one_line_and_exit_code_2(run_cli, capsys, args, message):
    assert run_cli("demo", *args, "--dry-run") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_gguf_model_resolves_in_the_plan(run_cli, capsys, tmp_path):
    from test_gguf import tiny_llama, write_gguf

    model, tokenizer = tiny_llama()
    folder = tmp_path / "smol"
    folder.mkdir()
    write_gguf(model, tokenizer, folder / "smol.F32.gguf")
    assert run_cli("demo", f"model={folder}", "--dry-run") == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["model"] == str(folder)
    assert f"# base model: {folder}\n" in out and "pretrained on this machine" not in out


def test_a_model_that_is_not_there_is_refused_before_anything_runs(run_cli, capsys, tmp_path):
    assert run_cli("demo", "model=/nonexistent/model", "--dry-run") == 2
    assert "key 'model': no such file or folder: /nonexistent/model" in capsys.readouterr().err
    assert run_cli("demo", "model=toyy", "--dry-run") == 2
    assert "key 'model': 'toyy' is not a folder here; did you mean 'toy'?" in capsys.readouterr().err
    assert run_cli("demo", "set.train.max_stepz=3") == 2  # a member's key, refused before the toy is built
    assert "max_stepz" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_partial_mixture_changes_only_the_shares_given(tmp_path):
    from xling.common.config import build
    from xling.models.toy import MIXTURE

    cfg = build(D.Config, {"task": "demo", "toy": {"mixture": {"en": 0.5, "te": 0}}})
    assert cfg.toy_config().mixture == {**MIXTURE, "en": 0.5, "te": 0}


def test_the_explanation_follows_the_numbers():
    cfg = D.Config(task="demo", problems=100)
    m = {"accuracy": {"base": {"synth": {"en": 30.0, "sw": 10.0}}, "a": {"synth": {"en": 40.0, "sw": 12.0}}},
         "comparisons": {"a": {"base": "base", "train_langs": ["en"], "mti": {"avg": 1.5},
                               "ci": {"mti": {"avg": [0.5, 2.5]}}}},
         "gen_avg": {"a": 3.0}, "gen_avg_ci": {"a": [1.0, 5.0]},
         "scaling": {"mti": {"leap": None, "note": "no power-law fit: fewer than three X"}}}
    lines = D.explain(m, cfg)
    assert "100 held-out problems per language: an accuracy's 95% interval is up to about ±10 points." in lines[0]
    assert "best in en (30.0%) and worst in sw (10.0%)" in lines[1]
    tied = {**m, "accuracy": {**m["accuracy"], "base": {"synth": {"en": 30.0, "sw": 10.0, "te": 10.0, "de": 30.0}}}}
    assert "best in en and de (30.0%) and worst in sw and te (10.0%), although its pretraining was English-heavy." in (
        D.explain(tied, D.Config(task="demo"))[1])
    assert any("a (trained on en): Gen 3.00 [1.00, 5.00], MTI 1.50 [0.50, 2.50]: it fixed errors beyond the noise"
               in line for line in lines)
    assert not any("no training run changed accuracy" in line for line in lines)
    assert lines[-1] == "What these numbers show: a changed accuracy beyond its 95% interval (Gen above)."
    m["off_target"] = {"base": {"synth": {"en": 2.0, "sw": None}}, "a": {"synth": {"en": 0.0, "sw": None}}}
    assert ("the language identifier judged at least 10 answers in only 2 of 4 cells (model x language); the others "
            "are undetermined" in "\n".join(D.explain(m, cfg)))
    m["off_target"] = {"base": {"synth": {"en": 2.0, "sw": 4.0}}, "a": {"synth": {"en": 0.0, "sw": 1.0}}}
    m["mean_off_target_judged"] = {"base": 1234, "a": 56}
    assert ("answers not in the requested language, mean over the languages with at least 10 judged answers (n: the "
            "answers judged): base 3.0% (n=1,234), a 0.5% (n=56)." in "\n".join(D.explain(m, cfg)))
    del m["off_target"]
    m["gen_avg_ci"]["a"] = [-1.0, 5.0]
    lines = D.explain(m, cfg)
    assert any("within the noise (Gen's interval includes 0)" in line for line in lines)
    assert lines[-1].startswith("What these numbers show: no training run changed accuracy beyond its 95% interval, "
                                "so no transfer can be read from them.")
    # the habit: fixed in English (trained) and in German (never trained on) on every one of 40 problems
    ids = [f"p{i}" for i in range(40)]
    habit = {"base": {"en": dict.fromkeys(ids, 1), "de": {i: int(k < 20) for k, i in enumerate(ids)}},
             "a": {"en": dict.fromkeys(ids, 0), "de": dict.fromkeys(ids, 0)}}
    lines = D.explain(m, cfg, habit)
    assert "   a: trained languages 100.0% -> 0.0% (-100.0 [-100.0, -100.0]), the other languages 50.0% -> 0.0% " in (
        "\n".join(lines))
    assert "the habit fell beyond the noise in languages never trained on after a: what GRPO taught carried" in lines[-1]
    # accuracy per problem: en 10 of 40 -> 30 of 40 (trained), de 20 -> 20 (not trained)
    scores = {"base": {"en": {i: float(k < 10) for k, i in enumerate(ids)}, "de": {i: float(k < 20) for k, i in enumerate(ids)}},
              "a": {"en": {i: float(k < 30) for k, i in enumerate(ids)}, "de": {i: float(k >= 20) for k, i in enumerate(ids)}}}
    line = next(x for x in D.explain(m, cfg, None, scores) if x.startswith("   a (trained on en)"))
    assert ("; accuracy in the trained languages 25.0% -> 75.0% (+50.0 points [+35.0, +65.0]); accuracy in the others "
            "50.0% -> 50.0% (+0.0 points [" in line), line
    last = D.explain(m, cfg, habit, scores)[-1]
    assert "accuracy rose beyond the noise" not in last
    assert last.endswith("what GRPO taught carried across languages, even where accuracy there moved less (a: the toy's "
                         "other errors are arithmetic facts, which one language's training does not teach another's "
                         "problems).")
    # German's accuracy rises too (20 -> 30 of 40, paired): the closing line says so and drops the caveat
    scores["a"]["de"] = {i: float(k < 30) for k, i in enumerate(ids)}
    m["gen_avg_ci"]["a"] = [1.0, 5.0]
    assert D.explain(m, cfg, habit, scores)[-1] == (
        "What these numbers show: a changed accuracy beyond its 95% interval (Gen above); in the languages never "
        "trained on, accuracy rose and the habit fell beyond the noise after a: what GRPO taught carried across "
        "languages.")
    assert D.explain(m, cfg, None, scores)[-1] == (  # accuracy rose there, the habit not measured
        "What these numbers show: a changed accuracy beyond its 95% interval (Gen above); accuracy rose beyond the "
        "noise in languages never trained on after a.")


def test_the_explanation_gives_the_leap_and_the_fit_with_their_intervals():
    cfg = D.Config(task="demo")
    m = {"accuracy": {"base": {"synth": {"en": 30.0}}, "a": {"synth": {"en": 31.0}}},
         "comparisons": {"a": {"base": "base", "train_langs": ["en"], "mti": {"avg": None}}}, "gen_avg": {},
         "scaling": {"mti": {"x": [1, 2, 3, 4], "alpha": 1.5, "beta": 0.3, "r2": 0.8, "gap": 0.2, "leap": 0.5,
                             "note": None, "ci": {"alpha": [1.0, 2.0], "beta": [-0.1, 0.6], "gap": [-1.0, 1.5],
                                                  "leap": [0.1, 1.0]}}}}
    text = "\n".join(D.explain(m, cfg))
    assert ("MTI with one parallel language minus English only = +0.50 [0.10, 1.00]: the first parallel language "
            "helped transfer, beyond the noise.") in text
    assert ("Scaling fit (figures/scaling.png): MTI = 1.50·X^0.30 on X = 2, 3, 4 (α [1.00, 2.00], β [-0.10, 0.60], "
            "R² 0.80); the Monolingual Generalization Gap f(1) - MTI(English only) = +0.20 [-1.00, 1.50]. The paper's: "
            "2.00·X^0.29, with a gap of 2.00 - 1.16 = +0.84. β's interval includes 0: these points cannot tell a rising "
            "curve from a flat one.") in text
    assert "the data do not determine it" not in text
    m["scaling"]["mti"]["ci"]["beta"] = [0.1, 0.6]
    assert "β's interval is above 0: MTI rises with the number of training languages, beyond the noise." in (
        "\n".join(D.explain(m, cfg)))
    m["scaling"]["mti"]["ci"]["beta"] = [-0.6, -0.1]
    assert "β's interval is below 0: MTI falls as training languages are added, beyond the noise." in (
        "\n".join(D.explain(m, cfg)))
    m["scaling"]["mti"]["ci"]["beta"] = [-0.1, 0.6]
    m["scaling"]["mti"].update(r2=0.01, y=[0.2, 1.0, 4.0, 1.1])
    m["scaling"]["mti"]["ci"].update(alpha=[-4.8e10, 6.2e10], gap=[-4.7e10, 3999.0])
    text = "\n".join(D.explain(m, cfg))
    assert "(α [-inf, inf], β [-0.10, 0.60], R² 0.01)" in text and "= +0.20 [-inf, 3999.00]" in text
    assert "Here the points scatter around the curve (R² below 0.5): the data do not determine it." in text
    m["scaling"]["mti"]["ci"]["beta"] = [-float("inf"), 0.6]
    assert "β's interval is unbounded: the data do not determine the curve." in "\n".join(D.explain(m, cfg))


def test_the_habit_change_is_paired_over_problems_and_languages():
    ids = ["p0", "p1", "p2", "p3"]
    items = {"base": {"de": dict(zip(ids, [1, 1, 0, 0])), "fr": dict(zip(ids, [1, 0, 0, 0]))},
             "run": {"de": dict(zip(ids, [0, 1, 0, 0])), "fr": dict(zip(ids, [1, 0, 0, 1]))}}
    c = D.habit_change(items, "run", ["de", "fr"], n_boot=400, seed=0)
    assert (c["base"], c["run"], c["change"]) == (37.5, 37.5, 0.0)
    assert c["ci"][0] < 0 < c["ci"][1]
    assert D.habit_change(items, "run", ["de"], n_boot=400, seed=0)["change"] == -25.0
    assert D.habit_change(items, "run", ["ja"], n_boot=400, seed=0) is None  # a language nobody evaluated
    assert D.habit_change(items, "run", ["de"], n_boot=400, seed=0) == D.habit_change(items, "run", ["de"], n_boot=400, seed=0)


def answers(run_dir) -> list[tuple[str, str, str]]:
    """Every answer the demo's models wrote: (language, problem, text), over all models, sorted."""
    out = []
    for shard in run_dir.glob("completions/*/synth/*.jsonl"):
        out += [(shard.stem, r["id"], r["text"]) for r in map(json.loads, shard.read_text().splitlines())]
    assert out
    return sorted(out)


@pytest.mark.slow
def test_a_shrunken_demo_runs_end_to_end_reproducibly_and_resumes(run_cli, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    assert run_cli("demo", *SHRUNK, "out=a") == 0
    out = capsys.readouterr().out
    for phase in ("phase 1: the toy base model", "phase 2: GRPO", "what to look at"):
        assert phase in out
    assert "This is a toy world" in out and "demo wall time:" in out
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert set(m["members"]) == {"en", "en+ru"}
    assert set(m["accuracy"]) == {"base", "en", "en+ru"}
    assert set(m["accuracy"]["base"]["synth"]) == {"en", "ru", "de"}
    assert m["demo"]["explanation"][0].startswith("This is a toy world")
    report = (tmp_path / "a" / "report.md").read_text()
    assert report.startswith("# Classroom demo: a toy world\n\n## What to look at\n\nThis is a toy world")
    assert "\n1. The base model: accuracy per language" in report and "\n   - en (trained on en): Gen" in report
    assert "## Members" in report and m["files"]["habit_figure"].endswith("habit.png")
    assert (tmp_path / "a" / "figures" / "accuracy.png").is_file()
    assert (tmp_path / "a" / "figures" / "habit.png").is_file() and "## The toy's habit" in report
    assert set(m["demo"]["habit"]) == {"base", "en", "en+ru"} and set(m["demo"]["habit"]["base"]) == {"en", "ru", "de"}
    toys = list((tmp_path / "cache" / "toy").iterdir())
    assert len(toys) == 1  # pretrained once, cached

    # the same command again into another folder: the cached toy, the same numbers
    assert run_cli("demo", *SHRUNK, "out=b") == 0
    out = capsys.readouterr().out
    assert "phase 1" in out and list((tmp_path / "cache" / "toy").iterdir()) == toys
    again = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert again["accuracy"] == m["accuracy"] and again["gen_avg"] == m["gen_avg"]
    assert answers(tmp_path / "b") == answers(tmp_path / "a")  # the same weights after GRPO: the same answers

    # and into the finished folder: nothing is redone
    before = (tmp_path / "a" / "metrics.json").stat().st_mtime_ns
    assert run_cli("demo", *SHRUNK, "out=a") == 0
    assert "already holds this finished run" in capsys.readouterr().out
    assert (tmp_path / "a" / "metrics.json").stat().st_mtime_ns == before


@pytest.mark.demo
@pytest.mark.skipif(os.environ.get("XLING_DEMO_CHECK") != "1",
                    reason="pretrains the demo's own toy (minutes): set XLING_DEMO_CHECK=1")
def test_the_demos_own_toy_solves_problems_in_every_language(run_cli, capsys, tmp_path, monkeypatch):
    """The real toy (ToyConfig(), pretrained as the demo pretrains it: about three and a half minutes on two cores), its base
    evaluated on 60 held-out problems in each of the 11 languages; one GRPO step stands in for the training. It runs
    with the README's demo check (XLING_DEMO_CHECK=1), in $XLING_CACHE when set, so that the check reuses the toy;
    unlike that check, it holds on any machine."""
    from xling.data.languages import CODES

    monkeypatch.setenv("XLING_CACHE", os.environ.get("XLING_CACHE") or str(tmp_path / "cache"))
    assert run_cli("demo", "ks=0", "problems=60", "n_boot=50", "set.train.max_steps=1", "out=d") == 0
    base = json.loads((tmp_path / "d" / "metrics.json").read_text())["accuracy"]["base"]["synth"]
    assert set(base) == set(CODES)
    assert all(acc > 0 for acc in base.values()), base
    assert base["en"] > max(base[c] for c in ("bn", "th", "sw", "te")), base  # the English-heavy mixture shows
