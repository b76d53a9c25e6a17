"""The Hugging Face hub: can it be reached? Decided at once, and once per process.

Without hub access, `datasets` and `transformers` retry for half a minute or more, printing
"Retrying..." lines, before they fail. xling asks first: `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`,
`HF_DATASETS_OFFLINE`) set means offline; otherwise one TCP connection to the hub's host
(`HF_ENDPOINT`, default huggingface.co:443) with a short timeout decides, and the answer is kept
for the process. Offline, a data set or model that only the hub has is a one-line error that says
what to pass instead (`path=`, `data.X=`, a model folder); a model already in the local Hugging Face
cache is loaded from it, with the libraries switched to offline mode so that they do not retry.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from xling.common.errors import XlingError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
PROBE_TIMEOUT = 3.0  # seconds for the one connection attempt
_TRUE = {"1", "on", "yes", "true"}
_UNKNOWN = object()
_answer: object = _UNKNOWN  # the probe's answer in this process: None (reachable) or why not


def endpoint() -> tuple[str, int]:
    """(host, port) of the hub this process talks to."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (80 if url.scheme == "http" else 443)
    return url.hostname or "huggingface.co", port


def offline_reason() -> str | None:
    """Why the hub cannot be used here (an environment variable, or no connection), or None."""
    global _answer
    for var in OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var} is set"
    if _answer is _UNKNOWN:
        host, port = endpoint()
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
            _answer = None
        except OSError as e:
            why = e.strerror or str(e) or type(e).__name__
            _answer = f"{host}:{port} cannot be reached: {why}"
    return _answer  # type: ignore[return-value]


def go_offline() -> None:
    """Tell huggingface_hub, datasets and transformers to use the local cache only (no retries)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        hub.HF_HUB_OFFLINE = True
    config = sys.modules.get("datasets.config")
    if config is not None:
        config.HF_HUB_OFFLINE = True


def require(what: str, instead: str) -> None:
    """An XlingError when the hub cannot be used: `what` needs it; `instead` says what to give."""
    reason = offline_reason()
    if reason is not None:
        raise XlingError(f"{what} needs the Hugging Face hub, which is not available ({reason}); {instead}")


def _cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an id the cache cannot hold (not org/name)
        return False
    return isinstance(found, str)


def looks_local(name: str) -> bool:
    """Whether `name` is written as a path (./x, ../x, /x, ~/x, a/b/c) rather than a hub id (org/name)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def check_model(name: str | None, key: str) -> None:
    """A model given by hub id (`key=name`) can be loaded: the hub is reachable, or the id is cached.

    Local folders, `tiny`/`tiny-base`/`toy` (built here), built-in chat templates ('chatml') and Jinja templates are
    not the hub's business.
    """
    from xling.data.prompts import BUILTIN_TEMPLATES

    if not isinstance(name, str) or not name.strip():
        return
    if name in ("tiny", "tiny-base", "toy") or name.lower() in BUILTIN_TEMPLATES or "{%" in name or "{{" in name:
        return
    if Path(name).expanduser().exists():
        return
    if looks_local(name):  # a path, not a hub id (org/name): the hub cannot help
        raise XlingError(f"{key}={name}: {name} does not exist; give an existing model folder (or file), or a hub id "
                         "(org/name)")
    if offline_reason() is None:
        return
    if _cached(name):
        go_offline()
        return
    require(f"{key}={name}", f"give {key}=FOLDER, a local copy of the model (e.g. one downloaded with "
                             "'huggingface-cli download' where the hub is reachable)")
