"""Worker processes with a hard deadline per task: what lets a grader stop a verification that hangs.

In: a picklable function and its argument tuples. Out: [(value, error), ...] in order, where error is
None, "timeout" (the task ran past the deadline: its worker is killed and replaced, the others go on)
or "verifier error: ..." (the function raised). `WorkerPool` keeps its processes for the whole run;
the grader (`xling.grading.answers`) runs math-verify in it, and language identification
(`xling.grading.langid`) its slow backends.
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import sys
import threading
import time
import types
from collections import deque
from multiprocessing.connection import wait as wait_connections
from typing import Any, Callable, Sequence

from xling.common.errors import XlingError

TIMEOUT = "timeout"


def _serve(conn) -> None:
    """Worker loop: receive (function, chunk of argument tuples), send back [(value, error), ...]."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        func, chunk = message
        out = []
        for args in chunk:
            try:
                out.append((func(*args), None))
            except Exception as e:  # a bad input must not kill the worker
                out.append((None, f"verifier error: {type(e).__name__}: {e}"[:200]))
        try:
            conn.send(out)
        except OSError:  # the caller is gone (killed mid-grading): nobody to answer, nothing to report
            return


class WorkerPool:
    """Long-lived worker processes that run a function per task with a hard per-task timeout.

    A task that runs past its timeout gets the error "timeout": its worker is killed and replaced,
    the other tasks go on. Workers start on first use and live until `close()`. Functions and
    arguments must be picklable (module-level functions). Thread-safe; one map at a time.
    """

    def __init__(self, workers: int, start_method: str | None = None):
        if workers < 1:
            raise XlingError(f"a worker pool needs at least 1 worker, not {workers}")
        self.workers = workers
        methods = multiprocessing.get_all_start_methods()
        self.start_method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        self._ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            self._ctx.set_forkserver_preload(["xling.grading.answers", "math_verify"])
        self._procs: list[tuple[Any, Any]] = []  # (process, connection)
        self._lock = threading.Lock()
        self.timeouts = 0
        self.restarts = 0

    def _start(self) -> tuple[Any, Any]:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_serve, args=(child,), daemon=True, name="xling-grader")
        # A worker must not re-run the caller's script (spawn and forkserver re-import __main__ unless
        # it is hidden while the process starts); tasks run module-level functions of importable modules.
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            proc.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main
        child.close()
        return proc, parent

    def _kill(self, proc, conn) -> None:
        try:
            proc.kill()
            proc.join(timeout=5)
        except Exception:
            pass
        conn.close()

    def map(self, func: Callable, tasks: Sequence[tuple], timeout: float, chunksize: int = 1) -> list[tuple[Any, str | None]]:
        """[(func(*args), None) or (None, error)] for each argument tuple, in order.

        `timeout` is per task; a chunk of tasks may take `timeout * len(chunk)` and all of them get
        "timeout" when it runs past that. It must be a positive, finite number of seconds.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
            raise XlingError(f"a worker pool's timeout must be a positive, finite number of seconds, not {timeout!r}")
        results: list[tuple[Any, str | None]] = [(None, None)] * len(tasks)
        chunks = deque((i, list(tasks[i:i + chunksize])) for i in range(0, len(tasks), max(1, chunksize)))
        with self._lock:
            while len(self._procs) < min(self.workers, len(chunks)):
                self._procs.append(self._start())
            idle = list(range(len(self._procs)))
            busy: dict[int, tuple[int, int, float]] = {}  # slot -> (first index, size, deadline)
            while chunks or busy:
                while idle and chunks:
                    slot = idle.pop()
                    first, chunk = chunks.popleft()
                    proc, conn = self._procs[slot]
                    try:
                        if not proc.is_alive():
                            raise BrokenPipeError
                        conn.send((func, chunk))
                    except OSError:  # the worker is gone: start another and hand it the task
                        self._kill(proc, conn)
                        self._procs[slot] = proc, conn = self._start()
                        self.restarts += 1
                        conn.send((func, chunk))
                    busy[slot] = (first, len(chunk), time.monotonic() + timeout * len(chunk))
                # at most a minute at a time: select() refuses waits beyond a few weeks
                wait_for = min(60.0, max(0.0, min(d for _, _, d in busy.values()) - time.monotonic()))
                ready = set(wait_connections([self._procs[s][1] for s in busy], timeout=wait_for))
                now = time.monotonic()
                for slot in list(busy):
                    proc, conn = self._procs[slot]
                    first, size, deadline = busy[slot]
                    if conn in ready:
                        try:
                            out = conn.recv()
                        except (EOFError, OSError):
                            out = [(None, "verifier error: worker died")] * size
                            self._kill(proc, conn)
                            self._procs[slot] = self._start()
                            self.restarts += 1
                        results[first:first + size] = out
                    elif now >= deadline:
                        results[first:first + size] = [(None, TIMEOUT)] * size
                        self.timeouts += size
                        self._kill(proc, conn)
                        self._procs[slot] = self._start()
                        self.restarts += 1
                    else:
                        continue
                    del busy[slot]
                    idle.append(slot)
        return results

    def close(self) -> None:
        with self._lock:
            for proc, conn in self._procs:
                try:
                    conn.send(None)
                except OSError:
                    pass
            for proc, conn in self._procs:
                proc.join(timeout=1)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=1)
                conn.close()
            self._procs = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
