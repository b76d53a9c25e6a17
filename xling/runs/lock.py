"""One run per folder: an exclusive lock on a folder while a run (or a translation store) works in it.

`FolderLock(folder)` holds a POSIX record lock (`fcntl.lockf`) on `folder/.xling.lock`, a file that
names its holder (pid, host, command, start time). A second process that asks for the same folder
is refused with an XlingError that says who holds it. The kernel drops the lock when its holder
dies, however it dies (SIGKILL included), so the folder is free again at once: the file a killed
run leaves only tells the next run that the last one stopped before its end. Record locks are not
inherited by forked children (worker pools), so an orphaned worker never keeps a folder locked.
The lock file is never opened through a symbolic link (a link in its place is replaced by a file
of its own), so a lock never writes outside its folder. The lock covers that folder only: a run
in a sub-folder (a sweep's member runs) takes its own.

Under `accelerate launch` only the main process (RANK 0) takes the lock; the other ranks work
beside it, and the launcher stops them if the main process is refused.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import sys
import time
from pathlib import Path

from xling.common.errors import XlingError

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


_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_CLOEXEC", 0)


def read_holder(folder: str | Path) -> dict:
    """What the lock file of `folder` says about its (last) holder; {} when absent or unreadable.

    Not for a process that holds the lock: closing any descriptor of the file drops its record lock.
    A lock file that is a symbolic link is never followed.
    """
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return {}
    try:
        return _parse(os.pread(fd, 65536, 0)) if stat.S_ISREG(os.fstat(fd).st_mode) else {}
    except OSError:
        return {}
    finally:
        os.close(fd)


class FolderLock:
    """An exclusive lock on one folder; use as a context manager or call acquire()/release()."""

    def __init__(self, folder: str | Path, what: str = "run folder", hint: str = "give another out=DIR"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self.hint = hint
        self.fd: int | None = None
        self.took_over: dict = {}  # the record of an earlier holder that stopped without releasing the lock

    def _open(self) -> int:
        """The lock file's descriptor: created in the folder itself, never through a symbolic link (a link
        there is removed: the lock file is replaced, what it pointed to is left alone)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise XlingError(f"cannot write in the {self.what} {self.folder} ({e.strerror}); "
                             f"{self.hint} in a writable place") from None
        for _ in range(100):
            try:
                fd = os.open(self.path, _OPEN_FLAGS, 0o644)
            except OSError as e:
                if e.errno == errno.ELOOP and self.path.is_symlink():
                    self._unlink_link()
                    continue
                if os.path.lexists(self.path):
                    raise XlingError(f"cannot open the lock file {self.path} ({e.strerror}); remove it if no run is "
                                     f"working in {self.folder}, or {self.hint}") from None
                raise XlingError(f"cannot write in the {self.what} {self.folder} ({e.strerror}); "
                                 f"{self.hint} in a writable place") from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise XlingError(f"the lock file {self.path} is not a regular file; remove it if no run is working "
                                 f"in {self.folder}, or {self.hint}")
            return fd
        raise XlingError(f"the lock file {self.path} keeps being replaced by a symbolic link; {self.hint}")

    def _unlink_link(self) -> None:
        try:
            if self.path.is_symlink():
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise XlingError(f"the lock file {self.path} is a symbolic link that cannot be removed ({e.strerror}); "
                             f"remove it, or {self.hint}") from None

    def acquire(self) -> "FolderLock":
        key = os.path.realpath(self.folder)
        if key in _HELD:
            raise XlingError(f"{self.what} {self.folder} is already in use by this process; {self.hint}")
        while True:
            fd = self._open()
            try:
                import fcntl

                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    raise XlingError(f"cannot lock the lock file {self.path} ({e.strerror}); {self.hint}") from None
                raise XlingError(f"{self.what} {self.folder} is in use by {_describe(read_holder(self.folder))}; "
                                 f"wait for it to finish, or {self.hint}") from None
            try:  # a holder that released the lock may have removed (or someone replaced) the file after we opened it
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
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
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        except OSError as e:
            os.close(fd)
            self.fd = None
            raise XlingError(f"cannot write the lock file {self.path} ({e.strerror}); free some space or "
                             f"{self.hint} in a writable place") from None
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
