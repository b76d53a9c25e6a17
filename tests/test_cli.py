"""run.py: listing, dry runs, overrides, one-line errors with exit 2, run folders."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli_captured as run
import yaml

from xling.runs import folder
from xling.runs import cli
from xling.common.config import available_recipes

REPO = Path(__file__).resolve().parent.parent




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


def test_recipe_help_line_says_what_a_key_means(capsys):
    """A key's line: its name, the comment beside its field, its type and its value (the recipe's, when set)."""
    rc, out, _ = run(capsys, "evaluate", "--help")
    lines = out.splitlines()
    width = max(len(line.split()[0]) for line in lines[2:])
    chunk = next(line for line in lines[2:] if line.split()[0] == "gen.chunk")
    assert chunk == ("  " + "gen.chunk".ljust(width) + "  conversations per generation call (what a crash can lose); "
                     "0: hf batch_size, vllm 256 — an integer; default 0 (recipe)")
    # a key whose section only changes the default keeps the meaning of the one declaration (SamplingSection)
    temperature = next(line for line in lines[2:] if line.split()[0] == "gen.temperature")
    assert temperature.endswith("  sampling temperature, 0 (greedy) to 2 — a number; default 0.6 (recipe)")
    rc, out, _ = run(capsys, "pivot", "--help")
    assert "  sampling temperature, 0 (greedy) to 2 — a number; default 0.0" in out


def _recipe_dataclasses():
    """Every dataclass a recipe can fill: each task's Config and the sections and list items it holds."""
    import typing
    from dataclasses import is_dataclass

    from xling.common.config import available_recipes, read_recipe_file
    from xling.runs.registry import load_task, task_names

    tasks = set(task_names()) | {read_recipe_file(p)["task"] for p in available_recipes().values()}
    seen: list = []

    def walk(tp):
        yield tp
        for arg in typing.get_args(tp):
            yield from walk(arg)

    def visit(cls):
        if cls in seen:
            return
        seen.append(cls)
        for tp in typing.get_type_hints(cls).values():
            for t in walk(tp):
                if is_dataclass(t):
                    visit(t)

    for task in sorted(tasks):
        visit(load_task(task).Config)
    return seen


def test_every_recipe_key_has_a_meaning(capsys):
    """Every field of every recipe dataclass has a one-line meaning, and `--help` prints one for every key."""
    from dataclasses import fields

    from xling.common.config import available_recipes, field_meanings

    classes = _recipe_dataclasses()
    assert len(classes) > 30
    missing = [f"{c.__module__}.{c.__qualname__}.{f.name}" for c in classes for f in fields(c)
               if not field_meanings(c).get(f.name, "").strip()]
    assert missing == []
    for name in available_recipes():
        rc, out, _ = run(capsys, name, "--help")
        assert rc == 0 and "(no description)" not in out, name
        assert all(" — " in line for line in out.splitlines()[2:]), name


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
    code = "import sys, xling, xling.runs.cli, xling.analysis.metrics; print(sorted(m for m in ('torch','trl','vllm','unsloth','transformers','datasets') if m in sys.modules))"
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


# -- finished runs are never passed off, nor changed by bad input ------------------------------------

EXAMPLE = REPO / "recipes" / "examples" / "grade-example.jsonl"
ON_LINUX = Path("/sys/kernel").is_dir()  # /sys refuses new files to every user, root included
# run.py in a process that SIGKILLs itself as its task starts: after the new recipe.yaml, before any result
KILLED_AT_TASK_START = """
import os, signal, sys
import xling.tasks.paper_replay as task
task.run = lambda cfg, run_dir: os.kill(os.getpid(), signal.SIGKILL)
from xling.runs.cli import main
sys.exit(main({args!r}))
"""


def files_of(folder: Path) -> dict[str, str]:
    """Every file under `folder`, with the sha1 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_killed_forced_rerun_never_passes_off_the_old_results(capsys, in_tmp):
    assert run(capsys, "paper-replay", "plot=false", "out=r")[0] == 0
    old_marker = (in_tmp / "r" / "metrics.json").read_text()
    args = ["paper-replay", "plot=false", "out=r", "fit_from=3"]
    proc = subprocess.run([sys.executable, "-c", KILLED_AT_TASK_START.format(args=[*args, "--force"])], cwd=in_tmp,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert yaml.safe_load((in_tmp / "r" / "recipe.yaml").read_text())["fit_from"] == 3  # written before the kill
    # a marker left in place (as by a kill before markers were moved aside) names the other recipe
    (in_tmp / "r" / "metrics.json").write_text(old_marker)
    rc, out, err = run(capsys, *args)
    assert rc == 0, err
    assert "already holds" not in out
    metrics = json.loads((in_tmp / "r" / "metrics.json").read_text())
    assert metrics["fit"]["mti"]["x"] == [3, 4, 5, 6, 7, 8]
    assert metrics["recipe_fingerprint"] == folder.recipe_fingerprint(yaml.safe_load((in_tmp / "r" / "recipe.yaml")
                                                                                  .read_text()))
    assert not (in_tmp / "r" / "metrics.previous.json").exists()
    rc, out, _ = run(capsys, *args)
    assert rc == 0 and "already holds this finished run" in out
    rc, _, err = run(capsys, "paper-replay", "plot=false", "out=r")  # the old command: another recipe's work
    assert rc == 2 and "holds work of a different recipe (differs in: fit_from)" in err


@pytest.fixture(scope="module")
def finished_grade_run(tmp_path_factory) -> Path:
    """A finished `grade` run (folder g) to aim bad input at."""
    import contextlib
    import io

    home = tmp_path_factory.mktemp("finished")
    cwd = os.getcwd()
    os.chdir(home)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["grade", f"input={EXAMPLE}", "workers=0", "out=g"]) == 0
    finally:
        os.chdir(cwd)
    return home / "g"


GRADE = ["grade", f"input={EXAMPLE}", "workers=0", "out=g"]  # a later key=value overrides an earlier one
BAD_INPUT = [
    ([*GRADE, "input=."], "input file . is a folder, not a file"),
    ([*GRADE, "input=/dev/null"], "input file /dev/null is empty"),
    ([*GRADE, "input=missing.jsonl"], "input file missing.jsonl does not exist"),
    ([*GRADE, "kind=maths"], "did you mean 'math'?"),
    ([*GRADE, "out=g/metrics.json"], "out=g/metrics.json is a file, not a folder"),
    ([*GRADE, "out=g/metrics.json/run"], "out=g/metrics.json/run: a part of that path is a file"),
    ([*GRADE, "out="], "out= is empty"),
    pytest.param([*GRADE, "out=/sys/xling-run"], "cannot create the run folder /sys/xling-run",
                 marks=pytest.mark.skipif(not ON_LINUX, reason="needs Linux /sys")),
    pytest.param([*GRADE, "out=/sys/kernel"], "cannot write in the run folder /sys/kernel",
                 marks=pytest.mark.skipif(not ON_LINUX, reason="needs Linux /sys")),
    pytest.param([*GRADE, "out=ro/run"], "the run folder ro/run is not writable",
                 marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")),
    (["data", "source=synth", "build=parallel", "k=8", "out=g"], "recipe key 'k': k=8: give 0 to 7"),
    (["data", "source=synth", "build=parallel", "k=-1", "out=g"], "recipe key 'k': k=-1: give 0 to 7"),
    (["data", "source=synth", "build=parallel", "n=4", "translations=/nonexistent", "out=g"],
     "translations folder /nonexistent does not exist"),
    (["transfer", "table=extra.csv", "base=b", "trained=t", "train_langs=en", "out=g"],
     "line 3: 5 values for the 4 columns of the header"),
    (["dup.yaml"], "key 'input' is given twice (lines 2 and 3)"),
]


@pytest.mark.parametrize("args,message", BAD_INPUT)
def test_bad_input_is_one_line_and_changes_no_finished_run(capsys, in_tmp, finished_grade_run, args, message):
    """Forced into a finished run's folder, bad input is refused there and leaves every file as it was."""
    shutil.copytree(finished_grade_run, in_tmp / "g")
    (in_tmp / "extra.csv").write_text("model,benchmark,lang,accuracy\nb,m,en,50\nt,m,en,60,7\nb,m,de,20\nt,m,de,30\n")
    (in_tmp / "dup.yaml").write_text(f"task: grade\ninput: {EXAMPLE}\ninput: other.jsonl\nout: g\n")
    (in_tmp / "ro").mkdir(mode=0o555)
    before = files_of(in_tmp / "g")
    rc, out, err = run(capsys, *args, "--force")
    assert rc == 2, out
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert files_of(in_tmp / "g") == before
    rc, out, _ = run(capsys, *GRADE)
    assert rc == 0 and "already holds this finished run" in out


def test_short_help_option(capsys):
    rc, out, _ = run(capsys, "transfer", "-h")
    assert rc == 0 and out.startswith("recipe transfer (task transfer)") and "train_langs" in out
    rc, out, _ = run(capsys, "-h")
    assert rc == 0 and "usage: python run.py RECIPE" in out


def test_yaml_override_with_a_key_given_twice(capsys, in_tmp):
    rc, _, err = run(capsys, "observational", "pairs=[{trained: a, trained: b, initial: c, paradigm: RL}]", "--dry-run")
    assert rc == 2 and "recipe key 'pairs': cannot parse" in err and "key 'trained' is given twice" in err


@pytest.mark.parametrize("out,message", [("g/metrics.json", "out=g/metrics.json is a file, not a folder"),
                                         ("g/metrics.json/run", "out=g/metrics.json/run: a part of that path is a file")])
def test_a_dry_run_refuses_an_out_that_cannot_be_a_folder(capsys, in_tmp, finished_grade_run, out, message):
    shutil.copytree(finished_grade_run, in_tmp / "g")
    rc, stdout, err = run(capsys, *GRADE, f"out={out}", "--dry-run")
    assert rc == 2 and message in err and err.count("\n") == 1 and not stdout


# run.py in a process whose libraries are interrupted while they shut down (after the run's end)
INTERRUPTED_AT_EXIT = """
import atexit, os, runpy, signal, sys, time
import xling.tasks.paper_replay as task
real = task.run

def run(cfg, run_dir):
    atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(60)))
    return real(cfg, run_dir)

task.run = run
sys.argv = ["run.py", "paper-replay", "plot=false", "out=r"]
runpy.run_path({run_py!r}, run_name="__main__")
"""


def test_an_interrupt_while_exiting_is_one_line_and_exit_130(tmp_path):
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_AT_EXIT.format(run_py=str(REPO / "run.py"))],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == ("error: interrupted; finished work is kept in the run folder, run the same command to "
                           "resume\n")
    assert (tmp_path / "r" / "metrics.json").is_file()  # the run had finished: its results are there


def test_help_piped_into_a_reader_that_stops_early_ends_quietly():
    """`run.py RECIPE --help | head -1`: the reader goes away before the help is written; no traceback."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "run.py", "evaluate", "--help"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the interpreter has even started: every write meets a closed pipe
    err = proc.stderr.read()
    assert proc.wait() == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_a_ctrl_c_a_stage_has_reported_is_said_once(capsys, monkeypatch):
    """A sweep's stage run in this process catches the Ctrl-C, says so and exits 130; the sweep stops and
    the command exits 130 without saying it a second time. A Ctrl-C nobody reported is said once."""
    from xling.studies import executors

    said = "error: interrupted; finished work is kept in the run folder, run the same command to resume\n"

    def stage_interrupted(stage):
        cli.print_error(cli.INTERRUPTED)
        return 130

    monkeypatch.setattr(executors, "_run_here", stage_interrupted)
    stage = type("S", (), {"id": "k0/train", "accelerate": False})()
    monkeypatch.setattr(cli, "execute", lambda *a, **k: executors.run_local([stage], None, 1, isolate=False))
    assert cli.main(["demo"]) == 130
    assert capsys.readouterr().err == said

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "execute", interrupted)
    assert cli.main(["demo"]) == 130
    assert capsys.readouterr().err == said
