"""Small helpers shared by the tests."""

from __future__ import annotations

from xling.config import build


def with_overrides(config_cls, data: dict, over: dict):
    """Build `config_cls` from a recipe dict after setting dotted keys ("train.max_steps": 3)."""
    for key, value in over.items():
        node = data
        *parts, last = key.split(".")
        for p in parts:
            node = node.setdefault(p, {})
        node[last] = value
    return build(config_cls, data)
