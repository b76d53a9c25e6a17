"""The parts every training run shares: stages, the run record, resume, the final save.

Run folder of a training run:
    recipe.yaml, env.json          written by run.py
    train_env.json                 plan (backend, device, batch), seed, GPUs, package versions
    tiny-model/                    model.name=tiny only: the random model trained
                                   (model.name=toy and GGUF models live in the xling cache)
    trainset.jsonl, trainset_summary.json   the training set (a stage: reused on re-run)
    checkpoints/checkpoint-N/      periodic checkpoints; resume=auto continues from the last
    train_log.jsonl                every trainer log (TRL's metrics + per-language ones)
    final/                         the adapter (or model, train.backend=full) + tokenizer, written
                                   atomically, with xling_train.json naming the settings it was trained
                                   with; a re-run with the same settings skips training, other settings
                                   train again (the old final/ is replaced when that training ends)
    metrics.json                   written by run.py from what the task returns

`xling.train.checkpoints` says which checkpoint folders are complete. Every stage that reuses what an
earlier run left checks that it was made with the same keys
(`stages.json`, `checkpoints/xling_recipe.json`, `final/xling_train.json`). A run killed after its
last checkpoint and before final/ ends with exactly the planned steps: that checkpoint becomes
the final model, no step is trained twice or once more.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from xling.data import hub
from xling.common import versions
from xling.common.config import to_dict
from xling.common.console import console, err_console, fmt, print_table
from xling.common.errors import XlingError
from xling.common.io import atomic_write_json, read_json, read_jsonl
from xling.planning.plan import preflight
from xling.train import backends
from xling.train.checkpoints import checkpoint_problem, checkpoint_step, checkpoints, damaged_checkpoints
from xling.train.callbacks import close_progress, language_table, quiet_trainer, read_log, truncate_log
from xling.train.config import RESUMABLE_CHANGES, TINY, TOY
from xling.planning.batches import world_size
from xling.common.store import fingerprint

FINAL = "final"
CHECKPOINTS = "checkpoints"
LOG = "train_log.jsonl"


def training_key(cfg: Any) -> dict:
    """The recipe without the keys that may change on resume."""
    data = to_dict(cfg)
    for key in RESUMABLE_CHANGES:
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return data


def final_key(cfg: Any) -> dict:
    """What a final model depends on: the checkpoints' key plus how long it was trained."""
    return {**training_key(cfg), "train.max_steps": cfg.train.max_steps, "train.epochs": cfg.train.epochs}


@contextmanager
def main_first():
    """Under accelerate launch, let the main process do a stage first (the others then reuse it)."""
    if world_size() == 1:
        yield
        return
    from accelerate import PartialState

    with PartialState().main_process_first():
        yield


def is_main() -> bool:
    return os.environ.get("RANK", "0") == "0"


def prepare(cfg: Any, run_dir: Path, method: str, generations: int = 1, standby: bool = False) -> backends.Plan:
    """Plan the run, check the installed versions, import Unsloth first where it is used, record the run."""
    if str(cfg.model.name) != TINY:  # before the heavy imports: offline, a hub id fails in a second
        hub.check_model(str(cfg.model.name), "model.name")
    hub.check_model(cfg.model.template_from, "model.template_from")
    plan = backends.resolve(cfg, method, generations)
    if not finished(run_dir, cfg):  # refuses what cannot fit this GPU; on CPU, says when it takes hours
        done = checkpoints(run_dir / CHECKPOINTS)
        for line in preflight(cfg, plan, checkpoint_step(done[-1]) if done else 0):
            if is_main():
                console.print(line, markup=False, soft_wrap=True, style="yellow" if line.startswith("note:") else None)
    warnings = backends.startup_check(plan, cfg.lora.qlora)
    if plan.backend == "unsloth":
        backends.import_unsloth(standby)  # before anything imports trl/transformers/peft
    quiet_libraries()
    if is_main():
        for note in plan.notes:
            console.print(f"note: {note}", markup=False)
        console.print(plan.describe(), markup=False)
    write_train_env(cfg, run_dir, plan, warnings)
    return plan


def start(cfg: Any, run_dir: Path, method: str, generations: int = 1,
          standby: bool = False) -> tuple[backends.Plan, dict | None]:
    """What every training run does first: its plan (`prepare`), then the summary of the final model when
    this recipe already trained it (training is then skipped), else None once the checkpoints a run would
    continue from are checked to be this recipe's."""
    plan = prepare(cfg, run_dir, method, generations, standby)
    if (done := reuse_final(cfg, run_dir)) is not None:
        return plan, summary(run_dir, done)
    check_checkpoints(cfg, run_dir)
    return plan, None


def quiet_libraries() -> None:
    """No tqdm bars from transformers/datasets (the run shows one rich bar); warnings stay."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
    except Exception:
        pass


# -- stages ----------------------------------------------------------------------------------------

def _stages(run_dir: Path) -> dict:
    path = run_dir / "stages.json"
    return read_json(path) if path.is_file() else {}


def mark_stage(run_dir: Path, name: str, key: str) -> None:
    stages = _stages(run_dir)
    stages[name] = key
    atomic_write_json(run_dir / "stages.json", stages)


def stage_done(run_dir: Path, name: str, key: str) -> bool:
    return _stages(run_dir).get(name) == key


def model_path(cfg: Any, run_dir: Path) -> str:
    """A local folder (absolute, so that saved adapters point at it) or a hub id; builds the tiny model,
    loads the pretrained toy model (`xling.models.toy`, cached), converts a GGUF checkpoint (`xling.models.gguf`, cached)."""
    name = str(cfg.model.name)
    if name == TOY:
        from xling.models.toy import build_toy

        with main_first():
            return str(build_toy().resolve())
    if name == TINY:
        path = (run_dir / "tiny-model").resolve()
        key = fingerprint({"seed": cfg.seed, "chat_template": cfg.model.template_from is None})
        if not ((path / "config.json").is_file() and stage_done(run_dir, "tiny-model", key)):
            with main_first():
                if not ((path / "config.json").is_file() and stage_done(run_dir, "tiny-model", key)):
                    from xling.models.tiny import build_tiny_model

                    tmp = path.with_name("tiny-model.partial")
                    shutil.rmtree(tmp, ignore_errors=True)
                    build_tiny_model(tmp, chat_template=cfg.model.template_from is None, seed=cfg.seed)
                    shutil.rmtree(path, ignore_errors=True)
                    os.replace(tmp, path)
                    mark_stage(run_dir, "tiny-model", key)
        return str(path)
    from xling.models import gguf

    if gguf.gguf_file(name) is not None:
        with main_first():
            return str(Path(gguf.resolve(name)).resolve())
    local = Path(name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise XlingError(f"model.name={name}: the folder has no config.json (nor a .gguf file); give a model "
                             "folder, a GGUF file or a hub id")
        return str(local.resolve())
    return name


def trainset_stage(cfg: Any, run_dir: Path) -> list[dict]:
    """The training set: built once (trainset.jsonl + trainset_summary.json), reused on re-run."""
    from xling.data import trainset

    key = fingerprint(asdict(cfg.data))
    path = run_dir / "trainset.jsonl"
    with main_first():
        if path.is_file() and stage_done(run_dir, "trainset", key):
            if is_main():
                console.print(f"training set: reusing {path}", markup=False)
        else:
            rows, summary = trainset.build(cfg.data)
            if is_main():
                trainset.show_summary(summary)
                trainset.save(rows, cfg.data, run_dir, summary)
                mark_stage(run_dir, "trainset", key)
    return read_jsonl(path)


# -- the run record and resume ---------------------------------------------------------------------

def write_train_env(cfg: Any, run_dir: Path, plan: backends.Plan, warnings: list[str], extra: dict | None = None) -> None:
    """train_env.json: this (re)start's plan, seed, GPUs and package versions; earlier starts under "earlier"."""
    if not is_main() or finished(run_dir, cfg):
        return
    path = run_dir / "train_env.json"
    earlier: list = []
    if path.is_file():
        try:
            old = read_json(path)
            earlier = old.pop("earlier", []) + [old]
        except XlingError:
            pass
    env = {
        "method": plan.method, "seed": cfg.seed, "plan": asdict(plan),
        "cuda": versions.cuda_info(), "packages": versions.lock_versions(), "lock_warnings": warnings,
        "world_size": plan.processes, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "recipe": to_dict(cfg), **(extra or {}), "earlier": earlier,
    }
    atomic_write_json(path, env)


def _choose_checkpoint(cfg: Any, output_dir: Path) -> str | None:
    """The checkpoint resume=auto|never|PATH names (never: none); auto takes the last one within max_steps."""
    mode = str(cfg.resume).strip()
    if mode == "never":
        return None
    if mode == "auto":
        found = checkpoints(output_dir)
        if cfg.train.max_steps > 0:  # after max_steps was lowered: an earlier checkpoint, trained on to it
            found = [p for p in found if checkpoint_step(p) <= cfg.train.max_steps]
        return str(found[-1]) if found else None
    path = Path(mode).expanduser()
    if not (path / "trainer_state.json").is_file():
        raise XlingError(f"resume={mode}: not a checkpoint folder (no trainer_state.json); give "
                         f"resume=auto, resume=never, or a {CHECKPOINTS}/checkpoint-N folder")
    if (problem := checkpoint_problem(path)) is not None:
        raise XlingError(f"resume={mode}: {problem}, so the run cannot continue from it exactly; give "
                         "resume=auto (the last complete checkpoint), resume=never, or another checkpoint folder")
    return str(path)


def check_checkpoints(cfg: Any, run_dir: Path) -> None:
    """Refuse, before any stage runs, to continue from checkpoints that another recipe made."""
    output_dir = run_dir / CHECKPOINTS
    key_file = output_dir / "xling_recipe.json"
    if _choose_checkpoint(cfg, output_dir) is None or not key_file.is_file():
        return
    key = training_key(cfg)
    old = read_json(key_file).get("recipe", {})
    if fingerprint(old) != fingerprint(key):
        changed = _changed(old, key)
        raise XlingError(f"the checkpoints in {output_dir} were made by a different recipe (differs in: "
                         f"{', '.join(changed[:5])}); add resume=never to start over, or give another out=DIR")


def resume_point(cfg: Any, output_dir: Path) -> str | None:
    """The checkpoint to continue from (resume=auto|never|PATH), after checking it is this recipe's."""
    key_file = output_dir / "xling_recipe.json"
    key = training_key(cfg)
    if str(cfg.resume).strip() == "never" and output_dir.exists() and is_main():
        console.print(f"resume=never: removing the earlier checkpoints in {output_dir}", markup=False)
        shutil.rmtree(output_dir)
    check_checkpoints(cfg, output_dir.parent)
    chosen = _choose_checkpoint(cfg, output_dir)
    beyond = [p.name for p in checkpoints(output_dir) if 0 < cfg.train.max_steps < checkpoint_step(p)]
    if beyond and str(cfg.resume).strip() == "auto" and is_main():
        console.print(f"note: {', '.join(beyond)} went past train.max_steps={cfg.train.max_steps}; "
                      f"{'continuing from ' + Path(chosen).name if chosen else 'starting over'}", markup=False)
    if str(cfg.resume).strip() == "auto" and is_main():
        after = int(Path(chosen).name.rsplit("-", 1)[1]) if chosen else -1
        skipped = [f"{p.name}: {problem}" for p, problem in damaged_checkpoints(output_dir)
                   if after < int(p.name.rsplit("-", 1)[1]) and not 0 < cfg.train.max_steps < int(p.name.rsplit("-", 1)[1])]
        if skipped:
            err_console.print(f"warning: cannot resume from {'; '.join(skipped)}; "
                              f"{'resuming from ' + Path(chosen).name if chosen else 'starting over'}",
                              markup=False, soft_wrap=True)
    if is_main():
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(key_file, {"key": fingerprint(key), "recipe": key})
    return chosen


def _changed(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _changed(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def finished(run_dir: Path, cfg: Any) -> dict | None:
    """The record of the final model in this run folder if this recipe trained it, else None."""
    info = run_dir / FINAL / "xling_train.json"
    if not info.is_file():
        return None
    try:
        record = read_json(info)
    except XlingError:
        return None
    return record if record.get("recipe_key") == fingerprint(final_key(cfg)) else None


def reuse_final(cfg: Any, run_dir: Path) -> dict | None:
    """The record of final/ when this recipe trained it (training is then skipped), else None.

    A final/ trained with other settings (a forced re-run that changed lora.r, say) is never
    relabelled: training runs again and replaces it when it ends.
    """
    info = finished(run_dir, cfg)
    if info is not None:
        if is_main():
            console.print(f"{run_dir / FINAL} already holds the model this recipe trains; training skipped "
                          "(delete that folder, or give another out=DIR, to train again)", markup=False)
        return info
    record = run_dir / FINAL / "xling_train.json"
    if record.is_file() and is_main():
        try:
            old = read_json(record).get("recipe") or {}
        except XlingError:
            old = {}
        changed = ", ".join(_changed(old, final_key(cfg))[:5]) if old else "settings not recorded"
        console.print(f"{run_dir / FINAL} was trained with other settings (differs in: {changed}); training "
                      "again (it is replaced when this training ends)", markup=False)
    return None


# -- training and saving ---------------------------------------------------------------------------

def fit(trainer: Any, tokenizer: Any, run_dir: Path, resume_from: str | None, info: dict, cfg: Any) -> dict:
    """Train (from `resume_from` if given), save final/ atomically, and summarize the run."""
    log_path = run_dir / LOG
    start = checkpoint_step(resume_from)
    if is_main():
        if resume_from:
            truncate_log(log_path, start)
            console.print(f"resuming from {resume_from} (step {start})", markup=False)
        elif log_path.exists():
            log_path.unlink()
    quiet_trainer(trainer)
    trainer.callback_handler.callbacks.insert(0, _stop_when_done(resume_from))
    trainer.add_callback(_log_at_saves())  # after transformers' flow callback, which decides the saves
    t0 = time.time()
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    except _NoStepsLeft:  # killed after its last checkpoint: the checkpoint's weights are loaded; save them
        if is_main():
            console.print(f"{resume_from} holds all {start} steps: it is saved as the final model", markup=False)
    finally:
        close_progress(trainer)
    wall = time.time() - t0
    state = trainer.state
    info = {**info, "recipe_key": fingerprint(final_key(cfg)), "steps": state.global_step,
            "resumed_from_step": start or None,
            "train_runtime_s": round(wall, 2), "train_loss": run_loss(state.log_history),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    save_final(trainer, tokenizer, run_dir, {**info, "recipe": final_key(cfg)})
    return info


def run_loss(log_history: list[dict]) -> float | None:
    """The mean training loss per step over the whole run, from the trainer's log (kept in every checkpoint).

    Each logged `loss` is the mean over the steps since the previous log; weighted by those steps it
    gives what an uninterrupted run's trainer reports, however many times the run was resumed (the
    trainer's own figure covers only the steps of the last session).
    """
    total, last = 0.0, 0
    for rec in log_history:
        step, loss = rec.get("step"), rec.get("loss")
        if isinstance(loss, (int, float)) and isinstance(step, int) and step > last:
            total += float(loss) * (step - last)
            last = step
    return total / last if last else None


def _log_at_saves():
    """A callback that logs the loss at every checkpoint and at the last step (with train.logging_steps > 1).

    The trainer's running loss is not in a checkpoint: steps after the last log would be lost from
    the run's loss by a resume, and the steps after the last log of a run are never logged at all.
    """
    from transformers import TrainerCallback

    class LogAtSaves(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if control.should_save or (state.max_steps > 0 and state.global_step >= state.max_steps):
                control.should_log = True

    return LogAtSaves()


class _NoStepsLeft(Exception):
    """Raised at the start of training when the checkpoint resumed from already has every planned step."""


def _stop_when_done(resume_from: str | None):
    """A callback that stops a resumed run before its first step when no step is left.

    transformers' loop trains one step before it looks at max_steps: resumed from checkpoint-N with
    max_steps=N (a run killed between its last checkpoint and final/) it would train step N+1.
    When training begins the checkpoint's weights and state are loaded and `state.max_steps` is this
    run's plan, so the check is exact whatever sets the plan (max_steps or epochs).
    """
    from transformers import TrainerCallback

    class StopWhenDone(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if resume_from is None or state.max_steps <= 0 or state.global_step < state.max_steps:
                return
            if state.global_step > state.max_steps:
                raise XlingError(f"{resume_from} has trained {state.global_step} steps, more than this run's "
                                 f"{state.max_steps}; give resume=PATH of an earlier checkpoint, or resume=never")
            raise _NoStepsLeft()

    return StopWhenDone()


def save_final(trainer: Any, tokenizer: Any, run_dir: Path, info: dict) -> Path:
    """final/: the adapter (LoRA) or the model (full) and the tokenizer, as from_pretrained and vLLM load them."""
    final, tmp = run_dir / FINAL, run_dir / (FINAL + ".partial")
    main = trainer.is_world_process_zero()
    if main and tmp.exists():
        shutil.rmtree(tmp)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))
    if main:
        tokenizer.save_pretrained(str(tmp))
        atomic_write_json(tmp / "xling_train.json", info)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    trainer.accelerator.wait_for_everyone()
    return final


def summary(run_dir: Path, info: dict, extra: dict | None = None) -> dict:
    """The run's metrics.json: what was trained, the final folder, and per-language metrics."""
    info = {k: v for k, v in info.items() if k != "recipe"}  # the settings stay in final/xling_train.json
    log = read_log(run_dir / LOG)
    table = language_table(log)
    if is_main():
        show_languages(table)
    last = next((r for r in reversed(log) if "train_runtime" in r), {})
    out = {**info, "final": str(run_dir / FINAL), "log": str(run_dir / LOG), "per_lang": table,
           "train_runtime_s": info.get("train_runtime_s", last.get("train_runtime")), **(extra or {})}
    return out


def show_languages(table: dict) -> None:
    if not table:
        return
    rows = []
    for lang, metrics in table.items():
        row = [lang]
        for metric in ("reward", "accuracy", "on_target"):
            m = metrics.get(metric)
            row.append(f"{fmt(m['first'])} -> {fmt(m['last'])}" if m else "")
        rows.append(row)
    print_table("per language (first quarter of logged steps -> last quarter)",
                ["lang", "reward", "accuracy", "on-target"], rows)


