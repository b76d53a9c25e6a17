"""A training run's checkpoints: which folders a run can continue from exactly, and what is wrong with the others.

In: a run's checkpoints/ folder (checkpoint-N/ folders as the trainer writes them). Out: the complete ones,
oldest first (`checkpoints`), the damaged ones with what is wrong (`damaged_checkpoints`,
`checkpoint_problem`: a file missing, or cut short by a kill or a full disk), and a checkpoint's step.
Which one a run resumes from, and whether its recipe made it, is `xling.train.lifecycle`'s.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from xling.common.io import read_json
from xling.planning.batches import world_size

def checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoint folders (every file the trainer reads to continue exactly), oldest first."""
    return [p for p, problem in _checkpoint_folders(output_dir) if problem is None]


def damaged_checkpoints(output_dir: Path) -> list[tuple[Path, str]]:
    """(folder, what is wrong) for each checkpoint folder that cannot be continued from, oldest first."""
    return [(p, problem) for p, problem in _checkpoint_folders(output_dir) if problem is not None]


def _checkpoint_folders(output_dir: Path) -> list[tuple[Path, str | None]]:
    if not output_dir.is_dir():
        return []
    found = []
    for p in output_dir.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return [(p, checkpoint_problem(p)) for _, p in sorted(found)]


def _zip_problem(path: Path) -> str | None:
    """torch.save writes a zip archive: a file cut short has no central directory at its end."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            if path.stat().st_size <= 64 * 2**20 and z.testzip() is not None:
                return f"{path.name} is damaged (a checksum does not match)"
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as e:
        return f"{path.name} is damaged ({type(e).__name__}: {str(e)[:80]})"
    return None


def _safetensors_problem(path: Path) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:  # checks that the header's tensors cover the file exactly
            f.keys()
    except Exception as e:  # SafetensorError, OSError: a file cut short or not safetensors at all
        return f"{path.name} is damaged ({str(e).splitlines()[0][:100] if str(e) else type(e).__name__})"
    return None


def _json_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return f"{path.name} is damaged (not readable JSON: {type(e).__name__})"
    return None


def _weights_problem(path: Path, stem: str) -> str | None:
    """The weights a checkpoint holds as `stem`.safetensors (one file or shards with an index) or `stem`.bin."""
    single, index, legacy = path / f"{stem}.safetensors", path / f"{stem}.safetensors.index.json", path / f"{stem}.bin"
    if single.is_file():
        return _safetensors_problem(single)
    if index.is_file():
        if (problem := _json_problem(index)) is not None:
            return problem
        shards = sorted(set((json.loads(index.read_text(encoding="utf-8")).get("weight_map") or {}).values()))
        for shard in shards:
            if not (path / shard).is_file():
                return f"{shard} is missing"
            if (problem := _safetensors_problem(path / shard)) is not None:
                return problem
        return None if shards else f"{index.name} lists no weight files"
    if legacy.is_file():
        return _zip_problem(legacy)
    return f"{single.name} is missing"


def checkpoint_problem(path: Path, processes: int | None = None) -> str | None:
    """What keeps a checkpoint from continuing a run exactly (e.g. "optimizer.pt is missing"), or None.

    The trainer resumes from the weights (adapter or model), trainer_state.json (step, logs, written
    last), optimizer.pt, scheduler.pt and the random state (rng_state.pth, or rng_state_R.pth per
    process): without one of them it would continue silently differently. Each is opened, not only
    looked for: a file cut short by a kill or a full disk counts as missing.
    """
    path = Path(path)
    if (problem := _json_problem(path / "trainer_state.json")) is not None:
        return problem
    adapter = (path / "adapter_config.json").is_file() or any(path.glob("adapter_model.*"))
    if adapter and (problem := _json_problem(path / "adapter_config.json")) is not None:
        return problem
    if (problem := _weights_problem(path, "adapter_model" if adapter else "model")) is not None:
        if not adapter and (path / "pytorch_model.bin").is_file():
            problem = _zip_problem(path / "pytorch_model.bin")
        if problem is not None:
            return problem
    optimizer = path / "optimizer.pt"
    if optimizer.is_file():
        if (problem := _zip_problem(optimizer)) is not None:
            return problem
    elif not ((path / "optimizer.bin").is_file() or any(path.glob("rank*-of-*-optimizer.pt"))):
        return "optimizer.pt is missing"
    scheduler = path / "scheduler.pt"
    if not scheduler.is_file():
        return "scheduler.pt is missing"
    if (problem := _zip_problem(scheduler)) is not None:
        return problem
    procs = processes or world_size()
    for name in (["rng_state.pth"] if procs == 1 else [f"rng_state_{i}.pth" for i in range(procs)]):
        if not (path / name).is_file():
            return f"{name} is missing"
        if (problem := _zip_problem(path / name)) is not None:
            return problem
    return None


def checkpoint_step(path: str | Path | None) -> int:
    if path is None:
        return 0
    state = read_json(Path(path) / "trainer_state.json")
    return int(state.get("global_step", 0))

