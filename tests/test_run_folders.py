"""Run folders met in odd states: a damaged finished marker, a forced re-run over older results, a
refused run in a new folder, misleading paths, full disks and read-only places: one line each, or
the right run, never a traceback nor a false "finished"."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from helpers import run_cli_captured as run
import yaml

from xling.runs import folder
from xling.common import io
from xling.common.errors import XlingError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "recipes" / "examples" / "grade-example.jsonl"
GRADE = ["grade", f"input={EXAMPLE}", "workers=0", "out=g"]




# -- a finished marker counts only when it parses and names its recipe -------------------------------

@pytest.mark.parametrize("garbage", ["garbage{{", "", "[]", "null", "7", '"done"', "\xff\xfe"])
def test_a_damaged_finished_marker_is_an_unfinished_run(capsys, in_tmp, garbage):
    assert run(capsys, *GRADE)[0] == 0
    graded = (in_tmp / "g" / "graded.jsonl").read_text()
    (in_tmp / "g" / "metrics.json").write_bytes(garbage.encode("latin-1"))
    rc, out, err = run(capsys, *GRADE)
    assert rc == 0, err
    assert "already holds" not in out
    marker = json.loads((in_tmp / "g" / "metrics.json").read_text())
    assert marker["recipe_fingerprint"] == folder.recipe_fingerprint(yaml.safe_load((in_tmp / "g" / "recipe.yaml")
                                                                                   .read_text()))
    assert (in_tmp / "g" / "graded.jsonl").read_text() == graded
    assert not (in_tmp / "g" / "metrics.previous.json").exists()
    assert "already holds this finished run" in run(capsys, *GRADE)[1]


def test_a_marker_object_without_a_fingerprint_still_marks_the_recipe_beside_it(capsys, in_tmp):
    """Markers written before they named their recipe: recipe.yaml says which run they finished."""
    assert run(capsys, *GRADE)[0] == 0
    marker = json.loads((in_tmp / "g" / "metrics.json").read_text())
    del marker["recipe_fingerprint"]
    (in_tmp / "g" / "metrics.json").write_text(json.dumps(marker))
    rc, out, _ = run(capsys, *GRADE)
    assert rc == 0 and "already holds this finished run" in out


def test_a_marker_that_is_a_folder_is_refused_in_one_line_before_any_work(capsys, in_tmp):
    (in_tmp / "g" / "metrics.json").mkdir(parents=True)
    rc, out, err = run(capsys, *GRADE)
    assert rc == 2
    assert err == "error: g/metrics.json is not a file (the finished marker of this folder is written there); " \
                  "move it aside, then run the same command again\n"
    assert not (in_tmp / "g" / "graded.jsonl").exists()


# -- a forced re-run leaves nothing of the run it replaces beside its results ------------------------

def test_a_forced_rerun_leaves_no_figure_of_the_run_it_replaced(capsys, in_tmp):
    assert run(capsys, "paper-replay", "plot=true", "out=r")[0] == 0
    assert (in_tmp / "r" / "parallel_scaling.png").is_file()
    (in_tmp / "r" / "figures").mkdir()
    (in_tmp / "r" / "figures" / "ti_zh.png").write_bytes(b"old figure")  # as a run with more languages left it
    rc, _, err = run(capsys, "paper-replay", "plot=false", "out=r", "--force")
    assert rc == 0, err
    assert not (in_tmp / "r" / "parallel_scaling.png").exists()
    assert not (in_tmp / "r" / "figures" / "ti_zh.png").exists()
    assert not (in_tmp / "r" / folder.ASIDE).exists()
    assert (in_tmp / "r" / "accuracy.csv").is_file()  # written again by this run
    assert json.loads((in_tmp / "r" / "metrics.json").read_text())["recipe_fingerprint"] == folder.recipe_fingerprint(
        yaml.safe_load((in_tmp / "r" / "recipe.yaml").read_text()))


def test_a_refused_forced_rerun_puts_the_old_results_back(capsys, in_tmp, monkeypatch):
    import xling.tasks.paper_replay as task

    assert run(capsys, "paper-replay", "plot=true", "out=r")[0] == 0
    before = {p.name: p.read_bytes() for p in (in_tmp / "r").iterdir() if p.is_file() and p.name != "env.json"}

    def refused(cfg, run_dir):
        raise XlingError("refused")

    monkeypatch.setattr(task, "run", refused)
    rc, _, err = run(capsys, "paper-replay", "plot=false", "out=r", "--force")
    assert rc == 2 and err == "error: refused\n"
    after = {p.name: p.read_bytes() for p in (in_tmp / "r").iterdir() if p.is_file() and p.name != "env.json"}
    assert after == before and not (in_tmp / "r" / folder.ASIDE).exists()


def test_member_folders_of_a_sweep_are_not_its_results(in_tmp):
    (in_tmp / "s" / "members" / "k0" / "eval").mkdir(parents=True)
    (in_tmp / "s" / "members" / "k0" / "eval" / "recipe.yaml").write_text("task: evaluate\n")
    (in_tmp / "s" / "members" / "k0" / "eval" / "accuracy.csv").write_text("a\n")
    (in_tmp / "s" / "report.md").write_text("# old\n")
    folder.set_aside_results(in_tmp / "s")
    assert (in_tmp / "s" / "members" / "k0" / "eval" / "accuracy.csv").is_file()  # another run's: untouched
    assert not (in_tmp / "s" / "report.md").exists()
    folder.restore_results(in_tmp / "s")
    assert (in_tmp / "s" / "report.md").read_text() == "# old\n" and not (in_tmp / "s" / folder.ASIDE).exists()


# -- a refused run leaves no folder of its own making ------------------------------------------------

def test_a_refused_run_removes_the_folder_it_created(capsys, in_tmp):
    rc, _, err = run(capsys, "grade", "input=missing.jsonl", "workers=0", "out=new/deeper/g")
    assert rc == 2 and "input file missing.jsonl does not exist" in err
    assert not (in_tmp / "new").exists()
    (in_tmp / "kept").mkdir()
    rc, _, _ = run(capsys, "grade", "input=missing.jsonl", "workers=0", "out=kept/g")
    assert rc == 2 and sorted(os.listdir(in_tmp / "kept")) == []  # the folder it found is left as it was


# -- messages that name the real problem -------------------------------------------------------------

def test_a_recipe_path_that_is_a_folder_is_called_a_folder(capsys, in_tmp):
    (in_tmp / "dir.yaml").mkdir()
    rc, _, err = run(capsys, "dir.yaml")
    assert rc == 2 and err == "error: recipe file 'dir.yaml' is a folder, not a file; give the path of a YAML recipe\n"


def test_only_on_a_recipe_that_is_no_sweep_is_an_unknown_option(capsys, in_tmp):
    rc, _, err = run(capsys, "demo", "--only=k9", "--dry-run")
    assert rc == 2
    assert err == ("error: unknown option --only=k9 for recipe demo (task demo): --only picks the members of a sweep; "
                   "options here: --dry-run, --force, --help, --list\n")
    rc, _, err = run(capsys, "parallel-scaling", "--only=k9", "--dry-run")  # a sweep: its own message
    assert rc == 2 and "--only names 'k9', which is not a member" in err


def test_a_local_model_path_that_does_not_exist_is_said_so(monkeypatch):
    from xling.data import hub

    monkeypatch.setattr(hub, "_answer", "huggingface.co:443 cannot be reached: offline")
    for name in ("./nope/model", "/nope/model", "~/nope", "a/b/c"):
        with pytest.raises(XlingError) as e:
            hub.check_model(name, "model.name")
        assert str(e.value) == (f"model.name={name}: {name} does not exist; give an existing model folder (or file), "
                                "or a hub id (org/name)")
    with pytest.raises(XlingError, match="needs the Hugging Face hub"):  # a hub id: the hub is what it needs
        hub.check_model("org/model-that-is-not-cached", "model.name")


# -- full disks and read-only places -----------------------------------------------------------------

def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def read_only(*args, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


@pytest.mark.parametrize("refuse,why", [(no_space, "no space left on the device"),
                                        (read_only, "it is on a read-only file system")])
def test_an_atomic_write_that_the_system_refuses_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch,
                                                                                     refuse, why):
    target = tmp_path / "results.json"
    target.write_text("old\n")
    monkeypatch.setattr(io.os, "fsync", refuse)
    with pytest.raises(XlingError) as e:
        io.atomic_write_json(target, {"a": 1})
    assert str(e.value) == f"cannot write {target}: {why}; {io.WRITE_HINT}"
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temporary file left


def test_an_append_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    shard = tmp_path / "c" / "en.jsonl"
    io.append_jsonl(shard, [{"id": 1}])
    monkeypatch.setattr(io.os, "fsync", no_space)
    with pytest.raises(XlingError, match=rf"^cannot write {shard}: no space left on the device; "):
        io.append_jsonl(shard, [{"id": 2}])


def test_a_read_only_completion_shard_is_one_line(tmp_path, monkeypatch):
    import builtins

    from xling.generate.completions import append_records

    shard = tmp_path / "completions" / "m" / "en.jsonl"
    append_records(shard, [{"id": "a", "sample": 0, "text": "x"}])
    real_open = builtins.open

    def guarded(file, mode="r", *args, **kwargs):
        if Path(file) == shard and ("a" in mode or "+" in mode or "w" in mode):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    with pytest.raises(XlingError) as e:
        append_records(shard, [{"id": "b", "sample": 0, "text": "y"}])
    assert str(e.value) == f"cannot write {shard}: permission denied; {io.WRITE_HINT}"


def test_a_grade_run_on_a_full_disk_says_so_in_one_line(capsys, in_tmp, monkeypatch):
    monkeypatch.setattr(io.os, "fsync", no_space)
    rc, _, err = run(capsys, *GRADE)
    assert rc == 2
    assert err.startswith("error: cannot write g/") and "no space left on the device" in err and err.count("\n") == 1


@pytest.mark.parametrize("refuse", [no_space, read_only])
def test_a_full_or_read_only_cache_is_one_line_naming_it(tmp_path, monkeypatch, refuse):
    from xling.models import tiny

    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tiny, "build_tiny_model", lambda path, **kw: refuse())
    with pytest.raises(XlingError) as e:
        tiny.cached_tiny_model()
    assert str(e.value).startswith(f"cannot write {tmp_path / 'cache' / 'tiny' / 'tiny'}: ")
    assert str(e.value).endswith(io.CACHE_HINT)
    assert os.listdir(tmp_path / "cache" / "tiny") == []  # no temporary folder left


def test_a_cache_write_refused_in_words_by_a_library_is_one_line_too(tmp_path, monkeypatch):
    """torch writes through C++: a full disk comes back as a RuntimeError whose text says so."""
    from xling.evaluation import models as evaluate

    def torch_like(path, **kw):
        raise RuntimeError("[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed: No space left on device")

    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("xling.models.tiny.build_tiny_model", torch_like)
    with pytest.raises(XlingError, match=r"^cannot write .*tiny-base: no space left on the device; set XLING_CACHE"):
        evaluate.materialize("tiny-base")


def test_a_killed_build_leaves_a_temporary_folder_that_the_next_build_removes(tmp_path, monkeypatch):
    import socket
    import subprocess
    import sys

    from xling.models import tiny

    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "tiny"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    stale = folder / f".tiny.build-{host}-{dead.pid}-abc123"
    live = folder / f".tiny.build-{host}-{os.getppid()}-def456"  # a build that a live process holds
    other = folder / f".tiny.build-another-host-{dead.pid}-ghi789"  # another machine's: cannot be judged here
    for p in (stale, live, other):
        (p / "part").mkdir(parents=True)
    built = []
    monkeypatch.setattr(tiny, "build_tiny_model", lambda path, **kw: built.append(path) or (path / "config.json")
                        .write_text("{}"))
    path = tiny.cached_tiny_model()
    assert (path / "config.json").is_file() and len(built) == 1
    assert not stale.exists() and live.exists() and other.exists()


def test_result_files_get_the_mode_of_the_umask(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    io.atomic_write_text(tmp_path / "a.txt", "x")
    io.atomic_write_bytes(tmp_path / "b.bin", b"x")
    io.atomic_write_jsonl(tmp_path / "c.jsonl", [{"a": 1}])
    for name in ("a.txt", "b.bin", "c.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask  # as open() makes them; not 0600


def test_a_tiny_model_cached_with_narrower_heads_is_built_again(tmp_path, monkeypatch):
    """The tiny models' heads became 32 wide (what vLLM's CPU build runs): an older cache is replaced."""
    from xling.models import tiny

    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    old = tmp_path / "cache" / "tiny" / "tiny-base"
    old.mkdir(parents=True)
    (old / "config.json").write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 4}))
    path = tiny.cached_tiny_model("tiny-base")
    config = json.loads((path / "config.json").read_text())
    assert path == old and config["hidden_size"] // config["num_attention_heads"] == tiny.HEAD_SIZE == 32
    assert "chat_template" not in json.loads((path / "tokenizer_config.json").read_text())
