"""One run per folder: an exclusive lock on a folder while a run (or a translation store) works in it.

`FolderLock(folder)` holds a POSIX record lock (`fcntl.lockf`) on `folder/.xling.lock`, a file that
names its holder (pid, host, command, start time). A second process that asks for the same folder
is refused with an XlingError that says who holds it. The kernel drops the lock when its holder
dies, however it dies (SIGKILL included), so a lock left by a dead process is taken over by the
next run; record locks are not inherited by forked children (worker pools), so an orphaned worker
never keeps a folder locked. The lock covers that folder only: a run in a sub-folder (a sweep's
member runs) takes its own.

Under `accelerate launch` only the main process (RANK 0) takes the lock; the other ranks work
beside it, and the launcher stops them if the main process is refused.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import XlingError

LOCK_NAME = ".xling.lock"
_HELD: dict[str, "FolderLock"] = {}  # folders this process holds (record locks do not conflict within one)


def _describe(info: dict) -> str:
    if not info:
        return "another process (it is just starting)"
    where = f"pid {info.get('pid')} on {info.get('host')}"
    since = f" since {info['started']}" if info.get("started") else ""
    command = f": {info['command']}" if info.get("command") else ""
    return f"{where}{since}{command}"


def _parse(raw: bytes) -> dict:
    try:
        info = json.loads(raw.decode("utf-8"))
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def read_holder(folder: str | Path) -> dict:
    """What the lock file of `folder` says about its (last) holder; {} when absent or unreadable.

    Not for a process that holds the lock: closing any descriptor of the file drops its record lock.
    """
    try:
        return _parse((Path(folder) / LOCK_NAME).read_bytes())
    except OSError:
        return {}


class FolderLock:
    """An exclusive lock on one folder; use as a context manager or call acquire()/release()."""

    def __init__(self, folder: str | Path, what: str = "run folder", hint: str = "give another out=DIR"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self.hint = hint
        self.fd: int | None = None
        self.took_over: dict = {}  # the earlier holder's record when a dead process's lock was taken over

    def acquire(self) -> "FolderLock":
        key = os.path.realpath(self.folder)
        if key in _HELD:
            raise XlingError(f"{self.what} {self.folder} is already in use by this process; {self.hint}")
        while True:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise XlingError(f"cannot write in the {self.what} {self.folder} ({e.strerror}); "
                                 f"{self.hint} in a writable place") from None
            try:
                import fcntl

                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                raise XlingError(f"{self.what} {self.folder} is in use by {_describe(read_holder(self.folder))}; "
                                 f"wait for it to finish, or {self.hint}") from None
            try:  # a holder that released the lock may have removed the file after we opened it
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        self.took_over = _parse(os.pread(fd, 65536, 0))  # through this fd: closing another would drop the lock
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "command": " ".join(["python", *sys.argv]) if sys.argv and sys.argv[0] else "",
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        _HELD[key] = self
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        _HELD.pop(os.path.realpath(self.folder), None)
        try:
            self.path.unlink()  # while still holding it: see the inode check in acquire()
        except OSError:
            pass
        os.close(self.fd)  # closing drops the record lock
        self.fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_main_process() -> bool:
    """False on the non-main ranks of a distributed launch (they share the main process's lock)."""
    return os.environ.get("RANK", "0") == "0"
