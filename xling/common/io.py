"""Small file helpers: atomic writes (a crash never leaves half a file) and JSON Lines."""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from xling.common.errors import XlingError


def _read_umask() -> int:
    mask = os.umask(0o022)  # read it (there is no other way) and put it back at once
    os.umask(mask)
    return mask


# The mode files get when created by open(): mkstemp's 0600 would make results private to their owner.
FILE_MODE = 0o666 & ~_read_umask()
WRITE_HINT = "free some space or make it writable (or give out=DIR in another place), then run the same command again"


def cannot_write(path: str | Path, error: OSError, hint: str = WRITE_HINT) -> XlingError:
    """The one-line error for a write to `path` that the system refused (full disk, read-only place...)."""
    code = error.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        why = "no space left on the device" if code == errno.ENOSPC else "the disk quota is exceeded"
    elif code == errno.EROFS:
        why = "it is on a read-only file system"
    elif code in (errno.EACCES, errno.EPERM):
        why = "permission denied"
    elif code in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
        why = "it is a folder, not a file" if code != errno.ENOTDIR else "a part of its path is a file, not a folder"
        hint = "move it aside, then run the same command again"
    else:
        why = error.strerror or type(error).__name__
    return XlingError(f"cannot write {path}: {why}; {hint}")


def make_folder(path: str | Path, hint: str = WRITE_HINT) -> Path:
    """`path` created as a folder with its parents; a refusal is a one-line XlingError naming it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise XlingError(f"cannot write in {path}: it (or a part of its path) is a file, not a folder; {hint}") \
            from None
    except OSError as e:
        raise cannot_write(path, e, hint) from None
    return path


def is_temporary(path: str | Path) -> bool:
    """Whether `path` is the temporary file of an atomic write (one that a kill left behind)."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(".tmp")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    return atomic_write_lines(path, [text])


def atomic_write_lines(path: str | Path, parts: Iterable[str]) -> Path:
    """Write the strings one after another to `path`, through a temporary file and a rename: the
    text is streamed, never held whole, and a failure midway leaves `path` as it was. A full disk
    or a read-only place is an XlingError naming `path`."""
    return _atomic_write(path, (p.encode("utf-8") for p in parts))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    return _atomic_write(path, [data])


def _atomic_write(path: str | Path, chunks: Iterable[bytes]) -> Path:
    path = Path(path)
    make_folder(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise cannot_write(path, e) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_safe(obj: Any) -> Any:
    """Replace NaN/inf by None so the file stays valid JSON; convert numpy scalars and tuples."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(_json_safe(obj), indent=2, ensure_ascii=False) + "\n")


def input_file(path: str | Path, what: str, hint: str) -> Path:
    """`path` if it is a non-empty regular file; else an XlingError saying what it is instead, then `hint`."""
    import stat

    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise XlingError(f"{what} {path} does not exist; {hint}") from None
    except NotADirectoryError:
        raise XlingError(f"{what} {path} does not exist (a part of the path is a file); {hint}") from None
    except OSError as e:
        raise XlingError(f"{what} {path} cannot be read ({e.strerror}); {hint}") from None
    if stat.S_ISDIR(mode):
        raise XlingError(f"{what} {path} is a folder, not a file; {hint}")
    if stat.S_ISCHR(mode) or (stat.S_ISREG(mode) and path.stat().st_size == 0):
        raise XlingError(f"{what} {path} is empty; {hint}")
    if not stat.S_ISREG(mode):
        raise XlingError(f"{what} {path} is not a regular file; {hint}")
    return path


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(read_text(path))
    except FileNotFoundError:
        raise XlingError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise XlingError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """A text file's content; a file that is not UTF-8 is an XlingError naming it and the byte."""
    path = Path(path)
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise XlingError(f"{path} is not UTF-8 text (byte {e.start + 1}); save it as UTF-8") from None


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    """One JSON object per line, written atomically and streamed row by row."""
    return atomic_write_lines(path, (json.dumps(_json_safe(r), ensure_ascii=False) + "\n" for r in rows))


def iter_jsonl(path: str | Path, whole_lines: bool = False) -> Iterator[tuple[int, dict | None, str | None]]:
    """Yield (line number, record or None, error or None) for each non-blank line.

    Malformed lines are reported, not raised, so that a caller can keep the good ones. `whole_lines`:
    a last line without its newline (an append cut short by a kill) is reported as torn, not read.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if whole_lines and not raw.endswith(b"\n"):
                if raw.strip():
                    yield lineno, None, "cut short (no newline at its end)"
                continue
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                yield lineno, None, f"not UTF-8 text (byte {e.start + 1}); save the file as UTF-8"
                continue
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                yield lineno, None, f"not valid JSON ({e.msg})"
                continue
            if not isinstance(rec, dict):
                yield lineno, None, "not a JSON object"
                continue
            yield lineno, rec, None


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSON Lines file; any malformed line is an error naming its line number."""
    path = Path(path)
    if not path.exists():
        raise XlingError(f"{path}: no such file")
    if path.is_dir():
        raise XlingError(f"{path} is a folder, not a JSON Lines file")
    rows, bad = [], []
    for lineno, rec, err in iter_jsonl(path):
        if err:
            bad.append(f"line {lineno}: {err}")
        else:
            rows.append(rec)
    if bad:
        raise malformed_lines_error(path, bad)
    return rows


def malformed_lines_error(path: str | Path, bad: list[str]) -> XlingError:
    """The error for a JSONL file with malformed lines ("line N: why" each), naming the first five."""
    return XlingError(f"{path}: {len(bad)} malformed line(s): " + "; ".join(bad[:5]))


def repair_tail(path: str | Path) -> int:
    """Cut a torn last line (no newline at its end: a kill mid-append); returns the bytes cut.
    A file that ends with a newline is only read (it may be on a read-only disk)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(path, "rb") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
    with open(path, "rb+") as f:
        keep, pos = 0, size
        while pos > 0:
            start = max(0, pos - 65536)
            f.seek(start)
            k = f.read(pos - start).rfind(b"\n")
            if k >= 0:
                keep = start + k + 1
                break
            pos = start
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def append_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Append records and flush them to disk (for caches that grow as work is done).

    A torn last line left by a kill is cut first, so that the new records start on a line of their own.
    """
    path = Path(path)
    make_folder(path.parent)
    data = "".join(json.dumps(_json_safe(r), ensure_ascii=False) + "\n" for r in rows)
    try:
        repair_tail(path)
        with open(path, "a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise cannot_write(path, e) from None


# -- folders built once in a cache ---------------------------------------------------------------

CACHE_HINT = ("set XLING_CACHE to a writable folder with free space (or free some where it is), "
              "then run the same command again")


def _refusal(exc: BaseException) -> OSError | None:
    """The OSError behind `exc` (itself, or its cause or context), when the system refused a write."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                                                      errno.EPERM):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _no_space(exc: BaseException) -> OSError | None:
    """Libraries that write through C++ (torch, safetensors) say "No space left on device" in words."""
    text = str(exc)
    for code, words in ((errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system"),
                        (errno.EDQUOT, "Disk quota exceeded")):
        if words in text:
            return OSError(code, words)
    return None


def _build_name(name: str) -> str:
    import socket

    return f".{name}.build-{socket.gethostname()}-{os.getpid()}-"


def _is_stale(tmp: Path, name: str) -> bool:
    """A temporary build folder of `name` whose builder (a process on this host) is gone."""
    import re
    import socket

    m = re.fullmatch(rf"\.{re.escape(name)}\.build-(.+)-(\d+)-[a-z0-9_]*", tmp.name)
    if not m or m.group(1) != socket.gethostname():
        return False
    pid = int(m.group(2))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def remove_stale_builds(path: str | Path) -> None:
    """Remove the hidden temporary folders that killed builds of `path` left beside it (not a live build's)."""
    import shutil

    path = Path(path)
    try:
        beside = list(path.parent.iterdir())
    except OSError:
        return
    for p in beside:
        if p.name.startswith(f".{path.name}.build-") and p.is_dir() and not p.is_symlink() and _is_stale(p, path.name):
            shutil.rmtree(p, ignore_errors=True)


def build_folder(path: str | Path, build: Callable[[Path], Any], done: Callable[[Path], bool] | None = None,
                 hint: str = CACHE_HINT) -> Path:
    """Build the folder `path` once: `build(tmp)` fills a hidden temporary folder beside it, which is
    renamed into place when complete, so a killed build leaves nothing under `path` (and its temporary
    folder is removed by the next build). `done(path)`: whether a folder there is a finished build
    (then it is kept, e.g. one that another process finished meanwhile). A full disk or a read-only
    place is a one-line XlingError naming the folder and `hint`."""
    import shutil

    path = Path(path)
    make_folder(path.parent, hint)
    remove_stale_builds(path)
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_build_name(path.name), dir=path.parent))
        build(tmp)
        if done is not None and done(path):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
            os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        refused = _refusal(e) or (_no_space(e) if isinstance(e, Exception) else None)
        if refused is not None:
            raise cannot_write(path, refused, hint) from None
        raise
    return path
