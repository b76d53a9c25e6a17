"""One run per folder: two real processes into one folder give one run and one clear refusal; a lock
left by a killed process is taken over; a parent folder's lock does not block a run below it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xling.runs import cli
from xling.common.errors import XlingError
from xling.runs.lock import LOCK_NAME, FolderLock, read_holder

REPO = Path(__file__).resolve().parent.parent
ARGS = ["paper-replay", "plot=false", "out=r"]
# A real run whose task waits for the file `go` before it does its work: it holds the folder's lock meanwhile.
HOLDER = """
import sys, time
from pathlib import Path
import xling.tasks.paper_replay as task
real = task.run

def waiting(cfg, run_dir):
    while not Path("go").exists():
        time.sleep(0.02)
    return real(cfg, run_dir)

task.run = waiting
sys.argv = ["run.py", *{args!r}]
from xling.runs.cli import main
sys.exit(main())
"""


def start_holder(cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(args=ARGS)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while read_holder(cwd / "r").get("pid") != proc.pid:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the run never took its lock"
        time.sleep(0.02)
    return proc


def run_py(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run.py"), *args], cwd=cwd, capture_output=True, text=True)


def test_two_runs_into_one_folder_give_one_run_and_one_refusal(tmp_path):
    first = start_holder(tmp_path)
    try:
        second = run_py(tmp_path, *ARGS)
        assert second.returncode == 2
        [line] = second.stderr.splitlines()
        assert line.startswith(f"error: run folder r is in use by pid {first.pid} on ")
        assert "paper-replay plot=false out=r" in line and "wait for it to finish, or give another out=DIR" in line
        assert "Traceback" not in second.stdout + second.stderr
        assert not (tmp_path / "r" / "metrics.json").exists()  # the refused run did nothing
    finally:
        (tmp_path / "go").touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["fit"]["mti"]["alpha"] == pytest.approx(2.00, abs=0.01)
    assert not (tmp_path / "r" / LOCK_NAME).exists()  # released and removed
    again = run_py(tmp_path, *ARGS)
    assert again.returncode == 0 and "already holds this finished run" in again.stdout


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    dead = start_holder(tmp_path)
    dead.send_signal(signal.SIGKILL)
    dead.wait(timeout=60)
    assert read_holder(tmp_path / "r")["pid"] == dead.pid  # the file stays: nobody removed it
    proc = run_py(tmp_path, *ARGS)
    assert proc.returncode == 0, proc.stderr
    assert f"note: the last run in r (pid {dead.pid} on " in proc.stdout
    assert (tmp_path / "r" / "metrics.json").is_file() and not (tmp_path / "r" / LOCK_NAME).exists()


def test_the_lock_covers_one_folder_only(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with FolderLock(tmp_path / "sweep"):  # a sweep holds its own folder while its members run below it
        assert cli.main(["paper-replay", "plot=false", "out=sweep/members/k3"]) == 0
        assert cli.main(["paper-replay", "plot=false", "out=sweep"]) == 2
        assert "run folder sweep is already in use by this process" in capsys.readouterr().err
        with pytest.raises(XlingError, match="in use"):
            FolderLock(tmp_path / "sweep").acquire()
    assert (tmp_path / "sweep" / "members" / "k3" / "metrics.json").is_file()
    assert cli.main(["paper-replay", "plot=false", "out=sweep"]) == 0  # released: the folder is free again


def test_non_main_ranks_take_no_lock(tmp_path, monkeypatch, capsys):
    """Under accelerate launch every rank runs run.py: only rank 0 locks the folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RANK", "1")
    with FolderLock(tmp_path / "r"):
        assert cli.main(ARGS) == 0


def test_a_lock_file_that_is_a_link_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / LOCK_NAME).symlink_to(victim)
    with FolderLock(tmp_path / "r"):
        lock = tmp_path / "r" / LOCK_NAME
        assert not lock.is_symlink() and lock.is_file()  # replaced by a file of its own
        assert read_holder(tmp_path / "r")["pid"] == os.getpid()
    assert victim.read_text() == "precious\n"


def test_a_dangling_lock_link_creates_nothing_outside_the_folder(tmp_path):
    (tmp_path / "r").mkdir()
    outside = tmp_path / "outside.json"
    (tmp_path / "r" / LOCK_NAME).symlink_to(outside)
    assert read_holder(tmp_path / "r") == {}
    with FolderLock(tmp_path / "r"):
        pass
    assert not outside.exists() and not os.path.lexists(tmp_path / "r" / LOCK_NAME)


def test_a_lock_file_that_cannot_be_opened_is_named(tmp_path, monkeypatch):
    """Root opens a file of mode 000 all the same: the refusal is simulated."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / LOCK_NAME).write_text("{}")
    real_open = os.open

    def refusing(path, flags, *args, **kwargs):
        if Path(path).name == LOCK_NAME:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing)
    with pytest.raises(XlingError) as e:
        FolderLock(tmp_path / "r").acquire()
    assert str(e.value) == (f"cannot open the lock file {tmp_path / 'r' / LOCK_NAME} (Permission denied); remove it "
                            f"if no run is working in {tmp_path / 'r'}, or give another out=DIR")


def test_a_lock_file_that_is_a_folder_is_named(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r" / LOCK_NAME).mkdir(parents=True)
    assert cli.main(ARGS) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot open the lock file r/{LOCK_NAME} (Is a directory)") and err.count("\n") == 1


def test_a_killed_run_frees_the_folder_by_itself(tmp_path):
    """The kernel drops the lock of a killed holder: the next run needs no takeover, the file only tells."""
    import fcntl

    dead = start_holder(tmp_path)
    dead.send_signal(signal.SIGKILL)
    dead.wait(timeout=60)
    fd = os.open(tmp_path / "r" / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free, although the dead run's file is still there
        fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
