"""Tasks: what a recipe runs (the top of the house: each task wires the stages below it together).

A task module defines `Config` (a dataclass extending `xling.common.config.Recipe`) and
`run(cfg, run_dir) -> dict`; the dict it returns is written to `run_dir/metrics.json`.
Module `foo_bar.py` is task `foo-bar` (`xling.runs.registry` finds it by name). Task modules import
heavy libraries inside `run`.
"""
