"""Tasks: what a recipe runs. One module per task, found by name.

A task module defines `Config` (a dataclass extending `xling.config.Recipe`) and
`run(cfg, run_dir) -> dict`; the dict it returns is written to `run_dir/metrics.json`.
Module `foo_bar.py` is task `foo-bar`. Task modules import heavy libraries inside `run`.
"""

from __future__ import annotations

import importlib
import pkgutil
from difflib import get_close_matches
from types import ModuleType

from ..errors import ConfigError


def task_names() -> list[str]:
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load_task(name: str) -> ModuleType:
    names = task_names()
    if name not in names:
        near = get_close_matches(str(name), names, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise ConfigError(f"unknown task '{name}'{hint}; tasks: {', '.join(names)}")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
