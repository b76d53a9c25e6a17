"""The tasks a recipe can name (its `task:` key): one module per task under `xling/tasks/`, found by name.

Task `foo-bar` is the module `xling.tasks.foo_bar`, imported when a recipe names it, so that the run-folder
plumbing and the studies that run tasks do not depend on any task's code.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from difflib import get_close_matches
from types import ModuleType

from xling.common.errors import ConfigError

TASKS = "xling.tasks"


def task_names() -> list[str]:
    spec = importlib.util.find_spec(TASKS)
    where = list(spec.submodule_search_locations or []) if spec else []
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(where) if not m.name.startswith("_"))


def load_task(name: str) -> ModuleType:
    names = task_names()
    if name not in names:
        near = get_close_matches(str(name), names, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise ConfigError(f"unknown task '{name}'{hint}; tasks: {', '.join(names)}")
    return importlib.import_module(f"{TASKS}.{name.replace('-', '_')}")
