"""A sweep's overrides: dotted keys flattened and nested, a stage recipe resolved with them, and tiny scale.

In: a stage recipe's name and the overrides a sweep gives it (`{data: {k: 3}}` or `data.k=3`). Out: the
flat and nested forms (`flatten`, `nest`), a value as written on the command line (`show_value`), the
task and validated Config of a stage (`task_of`, `resolve_stage`), and what `tiny=true` sets on a stage
(`TINY_TRAIN`, `TINY_EVAL` through `tiny_overrides`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from xling.common.config import all_keys, build, merge, read_recipe_file, recipe_path
from xling.common.errors import ConfigError

# What `tiny=true` sets: every stage at a size that runs on a CPU in seconds (tiny random model, built-in
# synth problems, two optimizer steps, 24-token answers). It checks the mechanics, not the science.
TINY_TRAIN = {
    "model.name": "tiny", "model.template_from": None, "model.dtype": "auto",
    "data.source": "synth", "data.path": None, "data.hub": None, "data.n": 8, "data.translations": None,
    "train.backend": "peft", "train.learning_rate": 1e-3, "train.max_steps": 2, "train.questions_per_step": 2,
    "train.batch_size": 2, "train.grad_accum": None, "train.precision": "fp32", "train.gradient_checkpointing": False,
    "train.save_steps": 1, "train.save_total_limit": 1,
    "lora.r": 8, "lora.alpha": 16, "lora.targets": ["q_proj", "k_proj", "v_proj", "o_proj"], "lora.qlora": False,
    "vllm.enabled": False, "grpo.num_generations": 4, "grpo.max_completion_length": 24, "grpo.max_prompt_length": 512,
    "rewards.workers": 0, "rewards.min_chars": 1, "sft.max_length": 512,
    "rft.samples": 2, "rft.max_tokens": 24, "rft.generator": "hf", "rft.chunk": 8,
    "pivot.model": "tiny", "pivot.backend": "hf", "pivot.max_tokens": 24, "pivot.keep_truncated": True,
    "pivot.temperature": 1.0,
    "rewards.embedding_model": "tiny",
}
TINY_EVAL = {"benchmarks": ["synth"], "data": {}, "limit": 4, "gen.backend": "hf", "gen.max_tokens": 24,
            "gen.batch_size": 16, "gen.n": {}, "score.workers": 0}


def flatten(tree: Mapping, cls: type | None = None, prefix: str = "") -> dict[str, Any]:
    """{'model': {'name': 'x'}, 'data.k': 1} -> {'model.name': 'x', 'data.k': 1}.

    With `cls` (a task's Config), only sections are walked into: a key whose value is itself a
    mapping (evaluate's `data`, `gen.n`) stays whole. Later keys win.
    """
    import typing
    from dataclasses import is_dataclass

    hints = typing.get_type_hints(cls) if cls is not None and is_dataclass(cls) else {}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        tp = hints.get(str(k))
        if isinstance(v, Mapping) and v and "." not in str(k) and (tp is None and cls is None or
                                                                   tp is not None and is_dataclass(tp)):
            out.update(flatten(v, tp, key + "."))
        else:
            out[key] = v
    return out


def nest(flat: Mapping[str, Any]) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for p in parents:
            child = node.get(p)
            if not isinstance(child, dict):
                child = node[p] = {}
            node = child
        node[last] = value
    return out


def show_value(value: Any) -> str:
    """A value as it would be written after key= on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def task_of(recipe: str, where: str):
    """The task module a recipe (name under recipes/ or a path) runs, and the recipe's data."""
    from xling.runs.registry import load_task

    path = recipe_path(recipe)
    data = read_recipe_file(path)
    task_name = str(data.get("task") or "")
    if not task_name:
        raise ConfigError(f"{where}: recipe {path} has no 'task' key")
    return load_task(task_name), data


def resolve_stage(recipe: str, overrides: Mapping[str, Any], out: Path, where: str):
    """The validated Config of `recipe` with dotted `overrides` and out=`out`; errors name `where`."""
    task, data = task_of(recipe, where)
    flat = dict(overrides)
    if "task" in flat:
        raise ConfigError(f"{where}: 'task' cannot be overridden")
    flat["out"] = str(out)
    try:
        cfg = build(task.Config, merge(data, nest(flat)))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return cfg, task


# Sizes that tiny scale caps: a smaller one given (on the command line, in the sweep's set) is kept
TINY_CAPS = {"limit", "gen.max_tokens", "data.n", "train.max_steps", "train.questions_per_step", "train.batch_size",
            "grpo.num_generations", "grpo.max_completion_length", "rft.samples", "rft.max_tokens", "pivot.max_tokens"}


def tiny_overrides(task_config: type, table: Mapping[str, Any], given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The entries of a tiny-scale table that are keys of this task (a SFT recipe has no grpo.*); a size in
    `given` smaller than the table's stays (tiny scale shrinks a run, never enlarges it)."""
    keys = set(all_keys(task_config))
    given = given or {}
    out = {}
    for k, v in table.items():
        if k not in keys:
            continue
        mine = given.get(k)
        small = (k in TINY_CAPS and isinstance(mine, (int, float)) and not isinstance(mine, bool)
                 and isinstance(v, (int, float)) and 0 < mine < v)
        out[k] = mine if small else v
    return out
