"""run.py: listing, dry runs, overrides, one-line errors with exit 2, run folders."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xling import cli
from xling.config import available_recipes

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *args):
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_usage_and_list(capsys):
    rc, out, _ = run(capsys)
    assert rc == 0 and "usage: python run.py RECIPE" in out
    rc, listing, _ = run(capsys, "--list")
    assert rc == 0
    for name, path in available_recipes().items():
        desc = yaml.safe_load(path.read_text())["description"]
        assert f"{name}" in listing and desc.splitlines()[0] in listing


def test_dry_run_prints_resolved_recipe_with_overrides(capsys, in_tmp):
    rc, out, _ = run(capsys, "transfer", "train_langs=en,ru", "langs=[en, de,fr]", "n_boot=10", "--dry-run")
    assert rc == 0
    cfg = yaml.safe_load(out)
    assert cfg["train_langs"] == ["en", "ru"] and cfg["langs"] == ["en", "de", "fr"]
    assert cfg["n_boot"] == 10 and cfg["task"] == "transfer"
    assert cfg["out"].startswith("runs/transfer-")
    assert not (in_tmp / "runs").exists()  # a dry run writes nothing
    rc, out, _ = run(capsys, "transfer", "--dry-run")
    assert yaml.safe_load(out)["out"] == "runs/transfer"


@pytest.mark.parametrize(
    "args,message",
    [
        (["transfer", "trian_langs=en"], "unknown recipe key 'trian_langs'; did you mean 'train_langs'"),
        (["transfer", "n_boot=many"], "recipe key 'n_boot': expected an integer, got 'many'"),
        (["transfer", "n_boot=1"], "recipe key 'n_boot': must be at least 2"),
        (["transfer", "train_langs=en,xx"], "recipe key 'train_langs': unknown language 'xx'"),
        (["transfer", "task=grade"], "'task' cannot be overridden"),
        (["transfer", "oops"], "overrides are written key=value"),
        (["transfr"], "unknown recipe 'transfr'; did you mean 'transfer'"),
        (["transfer", "--dryrun"], "unknown option --dryrun"),
        (["transfer", "table.x=1"], "recipe key 'table': expected text"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, in_tmp, args, message):
    rc, out, err = run(capsys, *args, "--dry-run")
    assert rc == 2
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_recipe_file_errors(capsys, in_tmp):
    bad = in_tmp / "bad.yaml"
    bad.write_text("task: transfer\ntable: [unclosed\n")
    rc, _, err = run(capsys, str(bad), "--dry-run")
    assert rc == 2 and "is not valid YAML at line" in err
    bad.write_text("")
    rc, _, err = run(capsys, str(bad), "--dry-run")
    assert rc == 2 and "is empty" in err
    bad.write_text("task: nosuchtask\n")
    rc, _, err = run(capsys, str(bad), "--dry-run")
    assert rc == 2 and "unknown task 'nosuchtask'" in err
    bad.write_text("task: transfer\nbase: a\ntrained: b\n")
    rc, _, err = run(capsys, str(bad), "--dry-run")
    assert rc == 2 and "recipe key 'table' is required: give it as table=VALUE" in err
    rc, _, err = run(capsys, str(in_tmp / "missing.yaml"))
    assert rc == 2 and "does not exist" in err


def test_recipe_help(capsys):
    rc, out, _ = run(capsys, "transfer", "--help")
    assert rc == 0 and "train_langs" in out and "a list of text" in out


def test_run_folder_lifecycle(capsys, in_tmp):
    rc, out, _ = run(capsys, "paper-replay", "plot=false")
    assert rc == 0
    run_dirs = list((in_tmp / "runs").iterdir())
    assert len(run_dirs) == 1 and run_dirs[0].name.startswith("paper-replay-")
    d = run_dirs[0]
    assert yaml.safe_load((d / "recipe.yaml").read_text())["plot"] is False
    assert json.loads((d / "env.json").read_text())["packages"]["numpy"]
    metrics = (d / "metrics.json").read_text()
    # a finished run is not redone...
    rc, out, _ = run(capsys, "paper-replay", "plot=false")
    assert rc == 0 and "already holds this finished run" in out
    # ...a different recipe is refused and nothing is touched...
    rc, _, err = run(capsys, "paper-replay", f"out={d}", "fit_from=3", "plot=false")
    assert rc == 2 and "holds work of a different recipe (differs in: fit_from)" in err
    assert (d / "metrics.json").read_text() == metrics
    assert yaml.safe_load((d / "recipe.yaml").read_text())["fit_from"] == 2
    # ...unless asked
    rc, _, _ = run(capsys, "paper-replay", f"out={d}", "fit_from=3", "plot=false", "--force")
    assert rc == 0
    assert json.loads((d / "metrics.json").read_text())["fit"]["mti"]["x"] == [3, 4, 5, 6, 7, 8]


def test_failed_run_keeps_no_half_results(capsys, in_tmp):
    rc, _, err = run(capsys, "transfer", "table=nope.csv", "out=r")
    assert rc == 2 and "accuracy table nope.csv does not exist" in err
    assert not (in_tmp / "r" / "metrics.json").exists()
    # fixing the input in the same folder is allowed: no work was done there yet
    (in_tmp / "t.csv").write_text("model,benchmark,lang,accuracy\nb,m,en,50\nb,m,de,20\nt,m,en,60\nt,m,de,30\n")
    rc, _, err = run(capsys, "transfer", "table=t.csv", "base=b", "trained=t", "train_langs=en", "out=r")
    assert rc == 0, err


def test_subprocess_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "run.py"), "transfer", "table=missing.csv", "base=a", "trained=b"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: accuracy table missing.csv does not exist"]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_import_xling_is_light():
    code = "import sys, xling, xling.cli, xling.metrics; print(sorted(m for m in ('torch','trl','vllm','unsloth','transformers','datasets') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_shipped_example_files_are_found_from_any_folder(capsys, in_tmp):
    rc, out, err = run(capsys, "grade", "workers=0")
    assert rc == 0, err
    [folder] = (in_tmp / "runs").iterdir()
    assert len((folder / "graded.jsonl").read_text().splitlines()) == 13


def test_doctor_runs_afresh_every_time(capsys, in_tmp):
    assert run(capsys, "doctor")[0] == 0
    rc, out, _ = run(capsys, "doctor")
    assert rc == 0 and "already holds" not in out and "installed" in out


def test_refused_forced_rerun_keeps_the_finished_run(capsys, in_tmp):
    """--force with bad input fails before any work: the finished run it would replace stays as it was."""
    (in_tmp / "t.csv").write_text("model,benchmark,lang,accuracy\nb,m,en,50\nb,m,de,20\nt,m,en,60\nt,m,de,30\n")
    (in_tmp / "dup.csv").write_text("model,benchmark,lang,accuracy\nb,m,en,50\nb,m,en,40\n")
    good = ["transfer", "table=t.csv", "base=b", "trained=t", "train_langs=en", "out=r"]
    assert run(capsys, *good)[0] == 0
    before = {n: (in_tmp / "r" / n).read_text() for n in ("recipe.yaml", "env.json", "metrics.json")}
    rc, _, err = run(capsys, *[a if a != "table=t.csv" else "table=dup.csv" for a in good], "--force")
    assert rc == 2 and "duplicate rows" in err
    assert {n: (in_tmp / "r" / n).read_text() for n in before} == before
    rc, out, _ = run(capsys, *good)
    assert rc == 0 and "already holds this finished run" in out


def test_interrupted_forced_rerun_no_longer_claims_to_be_finished(capsys, in_tmp, monkeypatch):
    import xling.tasks.paper_replay as task

    assert run(capsys, "paper-replay", "plot=false", "out=r")[0] == 0
    finished = (in_tmp / "r" / "metrics.json").read_text()

    def interrupted(cfg, run_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(task, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cli.execute("paper-replay", ["plot=false", "out=r", "fit_from=3"], force=True)
    assert not (in_tmp / "r" / "metrics.json").exists()
    assert (in_tmp / "r" / "metrics.previous.json").read_text() == finished  # kept, under another name
