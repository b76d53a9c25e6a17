"""A whole study at tiny scale, killed inside a member and run again: nothing finished is redone, the member resumes.

Tiny random model, synth problems, k = 0…3, CPU: four members trained and evaluated, the base
evaluated once, then the analysis with its fits, leap and gap in metrics.json and report.md.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARGS = ["parallel-scaling", "tiny=true", "sweep.members={k0: {data.k: 0}, k1: {data.k: 1}, k2: {data.k: 2}, "
        "k3: {data.k: 3}}", "evaluate.langs=[en,ru,fr,es,de,zh]", "evaluate.limit=3", "analyze.n_boot=200", "out=sw"]


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


@pytest.mark.slow
def test_toy_sweep_killed_inside_a_member_resumes_and_redoes_nothing(tmp_path):
    env = {**os.environ, "XLING_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "first.log", "wb")
    proc = subprocess.Popen([sys.executable, str(REPO / "run.py"), *ARGS], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    sw = tmp_path / "sw"
    marker = sw / "members" / "k1" / "train" / "checkpoints" / "checkpoint-1" / "trainer_state.json"
    deadline = time.monotonic() + 900
    while not marker.exists():
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the sweep never reached k1's first checkpoint"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and the member it runs, mid-training
    proc.wait()
    log.close()
    assert not (sw / "members" / "k1" / "train" / "final").exists(), "killed too late: k1 had finished"
    finished = {p: _mtime(p) for p in [sw / "bases" / "base" / "metrics.json",
                                       sw / "members" / "k0" / "train" / "metrics.json",
                                       sw / "members" / "k0" / "eval" / "metrics.json"]}
    assert not (sw / "metrics.json").exists()

    out = subprocess.run([sys.executable, str(REPO / "run.py"), *ARGS], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=1500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for path, before in finished.items():
        assert _mtime(path) == before, f"{path} was redone"
    train_env = json.loads((sw / "members" / "k1" / "train" / "train_env.json").read_text())
    assert len(train_env["earlier"]) == 1  # k1 started twice: killed, then resumed
    assert "resuming from" in out.stdout and "checkpoint-1" in out.stdout
    assert json.loads((sw / "members" / "k1" / "train" / "metrics.json").read_text())["steps"] == 2
    assert [p.name for p in (sw / "bases").iterdir() if p.is_dir()] == ["base"]  # the base, evaluated once

    m = json.loads((sw / "metrics.json").read_text())
    assert set(m["members"]) == {"k0", "k1", "k2", "k3"}
    assert [m["members"][k]["x"] for k in ("k0", "k1", "k2", "k3")] == [1, 2, 3, 4]
    acc = m["scaling"]["accuracy"]
    assert acc["x"] == [1, 2, 3, 4] and acc["members"] == {"1": "k0", "2": "k1", "3": "k2", "4": "k3"}
    assert acc["leap"] == pytest.approx(acc["y"][1] - acc["y"][0])
    assert acc["ci"]["leap"] is not None and acc["ci"]["leap"][0] <= acc["leap"] <= acc["ci"]["leap"][1]
    assert acc["fit"] is not None or acc["note"]  # a random model may leave nothing to fit: said in words
    report = (sw / "report.md").read_text()
    assert "## Parallel scaling" in report and "## Members" in report and "first leap" in report
    assert (sw / "models.csv").read_text().splitlines()[1:] == ["k0,base,en,1,", "k1,base,en+ru,2,",
                                                               "k2,base,en+ru+fr,3,", "k3,base,en+ru+fr+es,4,"]
    # again: everything is finished, nothing runs
    again = subprocess.run([sys.executable, str(REPO / "run.py"), *ARGS], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "already holds this finished run" in again.stdout


def test_a_forced_toy_sweep_reruns_the_stages_whose_recipe_changed(tmp_path, monkeypatch, capsys):
    """--force on a sweep means what it means on a stage: the members whose recipe changed run again
    (a resumable key such as train.max_steps included), with what comes after them; the rest is kept."""
    from xling.runs import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    args = ["parallel-scaling", "tiny=true", "sweep.members={k0: {data.k: 0}}", "evaluate.langs=[en]",
            "evaluate.limit=2", "analyze.n_boot=20", "sweep.isolate=false", "out=sw"]
    assert cli.main([*args, "sweep.set.train.max_steps=1"]) == 0
    sw = tmp_path / "sw"
    assert json.loads((sw / "members" / "k0" / "train" / "metrics.json").read_text())["steps"] == 1
    base = _mtime(sw / "bases" / "base" / "metrics.json")
    first_eval = _mtime(sw / "members" / "k0" / "eval" / "metrics.json")
    capsys.readouterr()
    assert cli.main(args) == 2
    assert "add --force" in capsys.readouterr().err
    assert cli.main([*args, "--force"]) == 0
    out = capsys.readouterr().out
    assert "holds a finished run" not in out
    assert json.loads((sw / "members" / "k0" / "train" / "metrics.json").read_text())["steps"] == 2
    assert _mtime(sw / "members" / "k0" / "eval" / "metrics.json") != first_eval  # the new model, evaluated
    assert _mtime(sw / "bases" / "base" / "metrics.json") == base  # unchanged: not run again
    assert cli.main(args) == 0 and "already holds this finished run" in capsys.readouterr().out


def test_the_sweep_hands_its_members_to_the_analysis_as_data(tmp_path, monkeypatch):
    """The analysis takes the sweep's members as planned (name, base, training languages, X, paradigm), not
    by reading back the models.csv it wrote; models.csv stays as an output."""
    from xling.analysis import members as AM
    from xling.runs import cli

    def no_reading(path):
        raise AssertionError(f"the sweep's analysis read {path}")

    monkeypatch.setattr(AM, "read_members", no_reading)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    args = ["parallel-scaling", "tiny=true", "sweep.members={k0: {data.k: 0}, k1: {set: {data.k: 1}, x: 5, paradigm: RL-ru}}",
            "evaluate.langs=[en,ru]", "evaluate.limit=2", "analyze.n_boot=20", "sweep.isolate=false", "out=sw"]
    assert cli.main(args) == 0
    m = json.loads((tmp_path / "sw" / "metrics.json").read_text())
    assert m["members"] == {"k0": {"name": "k0", "base": "base", "train_langs": ["en"], "x": 1, "paradigm": "RL"},
                            "k1": {"name": "k1", "base": "base", "train_langs": ["en", "ru"], "x": 5,
                                   "paradigm": "RL-ru"}}
    assert (tmp_path / "sw" / "models.csv").read_text().splitlines() == ["model,base,train_langs,x,paradigm",
                                                                         "k0,base,en,1,RL", "k1,base,en+ru,5,RL-ru"]


def test_the_old_toy_keys_of_a_sweep_are_refused_naming_the_new_ones(tmp_path, monkeypatch, capsys):
    from xling.runs import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["parallel-scaling", "toy=true", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: recipe key 'toy' is now 'tiny' (the tiny random model at tiny scale; model=toy is the "
                   "pretrained toy world): write tiny=... instead")
    assert cli.main(["parallel-scaling", "tiny=true", "sweep.members={k0: {data.k: 0, toy_set: {data.n: 2}}}",
                     "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == ("error: sweep.members.k0: toy_set is now tiny_set (overrides at tiny "
                                               "scale, tiny=true); write tiny_set: instead")
