"""Recipe `observational`: pairs of trained and initial models, a shared initial model evaluated once,
MTI per pair and by paradigm with intervals; a pair whose model is missing is refused up front."""

import json

import pytest

from xling.runs import cli
from test_evaluate import Spy


@pytest.fixture
def recipe(tiny_model, tiny_base_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def write(pairs, langs="[en, de, ja]", limit=3, plots=True):
        path = tmp_path / "obs.yaml"
        lines = ["task: observational", "description: test", f"models: {{init: {tiny_base_model}}}", "pairs:"]
        lines += [f"  - {p}" for p in pairs]
        lines += ["benchmarks: [synth]", f"langs: {langs}", f"limit: {limit}", "template_from: chatml",
                  "gen: {backend: hf, max_tokens: 5, batch_size: 4}", "score: {workers: 0}", "n_boot: 40",
                  f"plots: {str(plots).lower()}"]
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    return write


def test_observational_shares_the_initial_model(capsys, recipe, tiny_model, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    path = recipe([f"{{trained: {tiny_model}, initial: init, paradigm: RL, name: rl-a}}",
                   f"{{trained: {tiny_model}, initial: init, paradigm: SFT, name: sft-b, template_from: qwen2.5}}"])
    rc = cli.main([path, "out=o"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    # init (chatml) is shared by both pairs; sft-b's template differs, so its initial model is evaluated again
    assert len(spy.loads) == 4 and [m for _, m, _ in spy.loads].count(str(tiny_model)) == 2
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [p["paradigm"] for p in m["pairs"]] == ["RL", "SFT"]
    assert set(m["comparisons"]) == {"rl-a", "sft-b"}
    assert set(m["groups"]["mti"]) == {"RL", "SFT", "RL - SFT"} and "ci" in m["groups"]
    assert (tmp_path / "o" / "figures" / "mti.png").is_file()
    assert "MTI by training paradigm" in out
    assert "By training paradigm" in (tmp_path / "o" / "report.md").read_text()


def test_missing_initial_model_is_refused(capsys, recipe, tiny_model, tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    path = recipe([f"{{trained: {tiny_model}, initial: ./no-such-model, paradigm: RL}}"])
    rc = cli.main([path, "out=o"])
    _, err = capsys.readouterr()
    assert rc == 2 and "initial model 'no-such-model': ./no-such-model does not exist" in err
    assert spy.loads == [] and not (tmp_path / "o" / "completions").exists()


def test_duplicate_trained_model_needs_names(capsys, recipe, tiny_model, tmp_path):
    path = recipe([f"{{trained: {tiny_model}, initial: init}}", f"{{trained: {tiny_model}, initial: init, paradigm: SFT}}"])
    rc = cli.main([path, "out=o"])
    _, err = capsys.readouterr()
    assert rc == 2 and "is the trained model of two pairs" in err


def test_a_pairs_own_sampling_settings_apply_to_both_its_models(capsys, recipe, tiny_model, tmp_path, monkeypatch):
    """DAPO-Qwen-32B's settings (temperature 1.0, top-p 0.7, its own length) for it and its initial model; the
    initial model shared with a pair on the recipe's settings is evaluated once per setting."""
    import xling.generate as G

    seen = []
    real = G.load_generator

    def load(backend, model, **kw):
        gen = real(backend, model, **kw)
        chat = gen.chat
        gen.chat = lambda convs, **k: (seen.append((model, k["temperature"], k["top_p"], k["max_tokens"])), chat(convs, **k))[1]
        return gen

    monkeypatch.setattr(G, "load_generator", load)
    # the same trained model on other settings is another evaluation, so it may appear in two pairs
    path = recipe([f"{{trained: {tiny_model}, initial: init, paradigm: RL, name: rl-a, gen: {{max_tokens: 4}}}}",
                   f"{{trained: {tiny_model}, initial: init, paradigm: RL, name: dapo, "
                   f"gen: {{temperature: 1.0, top_p: 0.7, max_tokens: 3}}}}"], langs="[en, de]", limit=1, plots=False)
    rc = cli.main([path, "out=o"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["models"]["dapo"]["gen"] == {"temperature": 1.0, "top_p": 0.7, "max_tokens": 3}
    assert m["models"]["init"]["gen"] == {"max_tokens": 4} and m["models"]["init-2"]["gen"] == m["models"]["dapo"]["gen"]
    assert [p["initial"] for p in m["pairs"]] == ["init", "init-2"]
    settings = {(t, p, n) for _, t, p, n in seen}
    assert settings == {(0.6, 0.95, 4), (1.0, 0.7, 3)}  # the recipe's temperature/top-p, each pair's length
    assert "temperature 1.0; top_p 0.7; max_tokens 3" in out  # shown in the plan


def test_the_shipped_recipe_is_the_papers_study(run_cli, capsys, monkeypatch, tmp_path):
    """13 pairs on the paper's four benchmarks, DAPO's own settings, and a missing multilingual MATH500
    refused before any model is looked at, with the command that makes one."""
    import yaml

    from xling.common.config import RECIPES_DIR

    recipe = yaml.safe_load((RECIPES_DIR / "observational.yaml").read_text())
    assert len(recipe["pairs"]) == 13 and recipe["benchmarks"] == ["math500", "aime24", "aime25", "gpqa"]
    trained = {p["trained"].split("/")[1]: p for p in recipe["pairs"]}
    assert {"OpenThinker2-7B", "OpenThinker3-7B"} <= set(trained) and "OpenThinker-7B" not in trained
    assert trained["DAPO-Qwen-32B"]["gen"] == {"temperature": 1.0, "top_p": 0.7, "max_tokens": 20480}
    assert all(p["gen"]["max_tokens"] >= 20480 for name, p in trained.items() if "32B" in name)
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.cache/xling/... holds no copy here
    assert run_cli("observational", "out=o") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: data.math500=~/.cache/xling/translations/Qwen__Qwen2.5-7B-Instruct/math500-test: "
                          "no such file or folder; make a multilingual MATH500 with: python run.py translate "
                          "source=math500 split=test n=null langs=all")
