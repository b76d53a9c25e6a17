"""What a training run shows and records while it runs.

- `RichProgress`: one progress bar with ETA (transformers' own tqdm bars and log printer are
  switched off), showing the time per step and the latest reward and accuracy; the first step's
  time is also printed as a line as soon as it ends (a step can take minutes).
- `JsonlLog`: every log of the trainer (TRL's metrics and the per-language ones) appended to
  `run_dir/train_log.jsonl`; on resume, entries after the checkpoint are dropped first.
- `per_language_rewards`: wraps the reward functions so that, for each batch, the weighted total
  reward per language is logged as `reward/<lang>` next to the rewards' own `accuracy/<lang>` and
  `on_target/<lang>`.
- `language_table`: the per-language metrics at the start and the end of a run, from the log.

transformers is imported inside `callbacks()`, so this module loads before unsloth.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

from xling.common.console import console
from xling.common.io import append_jsonl, atomic_write_text, iter_jsonl
from xling.data.languages import LANGUAGES
from xling.planning.estimate import duration

LANG_METRICS = ("reward", "accuracy", "on_target")
clock = time.time  # what the progress line times steps with


# -- per-language reward ---------------------------------------------------------------------------

class _Batch:
    """The outputs of every reward function for the batch being scored."""

    def __init__(self, weights: Sequence[float]):
        self.weights = list(weights)
        self.outputs: dict[int, list] = {}

    def add(self, index: int, values: list, kwargs: dict) -> None:
        self.outputs[index] = list(values)
        if len(self.outputs) < len(self.weights):
            return
        langs, log_metric = kwargs.get("lang"), kwargs.get("log_metric")
        rows = [self.outputs[i] for i in range(len(self.weights))]
        self.outputs = {}
        if not langs or not callable(log_metric):
            return
        totals: dict[str, list[float]] = defaultdict(list)
        for j, lang in enumerate(langs):
            parts = [(w, row[j]) for w, row in zip(self.weights, rows) if j < len(row)]
            values = [(w, v) for w, v in parts if v is not None and not (isinstance(v, float) and math.isnan(v))]
            if values:  # TRL: a None counts 0 in the weighted sum; all None: unscorable, left out
                totals[lang].append(sum(w * v for w, v in values))
        for lang in sorted(totals):
            log_metric(f"reward/{lang}", sum(totals[lang]) / len(totals[lang]))


class _Tap:
    """A reward function that reports its outputs to the batch (same name, so TRL logs it the same)."""

    def __init__(self, func: Callable, index: int, batch: _Batch):
        self.func = func
        self.index = index
        self.batch = batch
        self.__name__ = getattr(func, "__name__", f"reward_{index}")

    def __call__(self, *args: Any, **kwargs: Any) -> list:
        out = self.func(*args, **kwargs)
        self.batch.add(self.index, out, kwargs)
        return out

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


def per_language_rewards(funcs: Sequence[Callable], weights: Sequence[float]) -> list[Callable]:
    """The reward functions, wrapped so that the total reward per language is logged too."""
    batch = _Batch(weights)
    return [_Tap(f, i, batch) for i, f in enumerate(funcs)]


# -- the log file ------------------------------------------------------------------------------------

def read_log(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    return [rec for _, rec, err in iter_jsonl(path) if rec is not None]


def truncate_log(path: Path, step: int) -> None:
    """Keep only the entries up to `step` (a resumed run logs the later steps again)."""
    if not Path(path).is_file():
        return
    kept = [rec for rec in read_log(path) if rec.get("step", 0) <= step]
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


def language_table(log: list[dict]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{lang: {metric: {"first", "last"}}}: means over the first and the last quarter of the logged steps."""
    series: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rec in log:
        for key, value in rec.items():
            if "/" not in key or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            metric, lang = key.split("/", 1)
            if metric in LANG_METRICS and lang in LANGUAGES:
                series[lang][metric].append(float(value))
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for lang in sorted(series):
        out[lang] = {}
        for metric in LANG_METRICS:
            values = series[lang].get(metric, [])
            if not values:
                continue
            q = max(1, len(values) // 4)
            out[lang][metric] = {"first": sum(values[:q]) / q, "last": sum(values[-q:]) / q, "steps": len(values)}
    return out


# -- callbacks ---------------------------------------------------------------------------------------

def callbacks(log_path: Path, start_step: int = 0, show: bool = True) -> list:
    """The trainer callbacks: the JSONL log, and the progress bar (main process only)."""
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                append_jsonl(log_path, [{"step": state.global_step, "epoch": state.epoch,
                                          "time": round(time.time(), 3), **logs}])

    class RichProgress(TrainerCallback):
        def __init__(self):
            self.progress = None
            self.task = None
            self.info = ""
            self.timing = ""
            self.start, self.start_step = 0.0, 0

        def on_train_begin(self, args, state, control, **kwargs):
            if not (show and state.is_world_process_zero):
                return
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                     TextColumn("{task.fields[info]}"), console=console, transient=False)
            self.progress.start()
            self.task = self.progress.add_task("train", total=state.max_steps or None, info="")
            self.progress.update(self.task, completed=state.global_step)
            self.start, self.start_step = clock(), state.global_step
            left = (state.max_steps or 0) - state.global_step
            console.print(f"training {left} step(s); a step generates and scores its rollouts, then trains on them "
                          "(its time is shown when the first one ends)", markup=False)

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is None:
                return
            done = state.global_step - self.start_step
            per_step = (clock() - self.start) / done if done > 0 else None
            if per_step is not None:
                self.timing = f"{duration(per_step)}/step"
                if done == 1:
                    left = (state.max_steps or 0) - state.global_step
                    console.print(f"step {state.global_step} took {duration(per_step)}"
                                  + (f"; the other {left} take{'s' if left == 1 else ''} about {duration(per_step * left)} at that rate" if left
                                     else ""), markup=False)
            self.progress.update(self.task, completed=state.global_step, info=self._info())

        def _info(self) -> str:
            return "  ".join(p for p in (self.timing, self.info) if p)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.progress is None or not logs:
                return
            parts = []
            for key, label in (("reward", "reward"), ("loss", "loss"), ("rewards/accuracy_reward/mean", "acc")):
                value = logs.get(key)
                if isinstance(value, (int, float)):
                    parts.append(f"{label} {value:.3f}")
            self.info = "  ".join(parts)
            self.progress.update(self.task, info=self._info())

        def on_train_end(self, args, state, control, **kwargs):
            self.close()

        def close(self):
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

    return [JsonlLog(), RichProgress()]


def quiet_trainer(trainer: Any) -> None:
    """Remove transformers' own progress bar and log printer (xling shows its own), and its warning that a
    resumed checkpoint lacks the tied output weights (`lm_head.weight` of a model that ties it to the
    embeddings is never saved: it is tied again, as on any load)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    issue = getattr(trainer, "_issue_warnings_after_load", None)
    model = getattr(trainer, "model", None)
    tied = set(getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or ())
    if issue is None or not tied or not getattr(getattr(model, "config", None), "tie_word_embeddings", False):
        return

    def warn_untied(load_result: Any) -> None:
        missing = [k for k in load_result.missing_keys if k not in tied]
        if len(missing) < len(load_result.missing_keys):
            model.tie_weights()
            load_result = load_result._replace(missing_keys=missing)
        issue(load_result)

    trainer._issue_warnings_after_load = warn_untied


def close_progress(trainer: Any) -> None:
    for cb in getattr(getattr(trainer, "callback_handler", None), "callbacks", []):
        if hasattr(cb, "close") and type(cb).__name__ == "RichProgress":
            cb.close()
