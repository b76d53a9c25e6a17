"""Recipe `observational`: pairs of trained and initial models, a shared initial model evaluated once,
MTI per pair and by paradigm with intervals; a pair whose model is missing is refused up front."""

import json

import pytest

from xling import cli
from test_evaluate import Spy


@pytest.fixture
def recipe(tiny_model, tiny_base_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def write(pairs):
        path = tmp_path / "obs.yaml"
        lines = ["task: observational", "description: test", f"models: {{init: {tiny_base_model}}}", "pairs:"]
        lines += [f"  - {p}" for p in pairs]
        lines += ["benchmarks: [synth]", "langs: [en, de, ja]", "limit: 3", "template_from: chatml",
                  "gen: {backend: hf, max_tokens: 5, batch_size: 4}", "score: {workers: 0}", "n_boot: 40"]
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
