"""Rejection fine-tuning (RFT): sample k answers per problem, keep the correct ones, SFT on them.

The baseline between SFT and RL in "Beyond English-Centric Training". Stages, each resumable:

1. sampling — `rft.samples` answers per training problem from the model being trained (through
   `xling.generate`, backend `hf` or `vllm`), graded with the one grader (`xling.grading.answers`), written
   chunk by chunk to `rft_samples.partial.jsonl` (an interrupted run samples only the problems
   it lacks) and then to `rft_samples.jsonl`. With vLLM the sampling runs in its own process
   (`python -m xling.train.rft RUN_DIR`), so that its GPU memory is free for training;
2. selection — up to `rft.keep` distinct correct answers per problem (a completion cut off at
   `max_tokens` is never kept);
3. SFT on them (`xling.train.sft.fit_sft`), prompts exactly as the samples were drawn.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

from xling.common.console import console, print_table
from xling.common.errors import XlingError
from xling.common.io import atomic_write_jsonl, read_jsonl
from xling.common.store import Store, fingerprint
from xling.train import backends, lifecycle
from xling.train.sft import fit_sft

SAMPLES = "rft_samples.jsonl"
PARTIAL = "rft_samples.partial.jsonl"


def generator_backend(cfg: Any, plan: backends.Plan) -> str:
    if cfg.rft.generator != "auto":
        return cfg.rft.generator
    return "vllm" if plan.cuda and backends.installed("vllm") else "hf"


def open_generator(cfg: Any, backend: str, model_path: str):
    """The model being trained (and its starting adapter) behind `xling.generate`'s interface."""
    from xling.generate import load_generator

    options: dict = {"seed": cfg.seed}
    if cfg.model.template_from is not None:
        options["template_from"] = cfg.model.template_from
    if cfg.model.dtype != "auto":
        options["dtype"] = cfg.model.dtype
    if backend == "vllm":
        options["gpu_memory_utilization"] = cfg.rft.gpu_memory_utilization
    return load_generator(backend, model_path, adapter=cfg.model.adapter, **options)


def samples_key(cfg: Any) -> str:
    r = cfg.rft
    return fingerprint({"model": cfg.model.name, "adapter": cfg.model.adapter, "template": cfg.model.template_from,
                        "dtype": cfg.model.dtype, "data": fingerprint(asdict(cfg.data)), "samples": r.samples,
                        "seed": cfg.seed, "temperature": r.temperature, "top_p": r.top_p, "max_tokens": r.max_tokens,
                        "chunk": r.chunk, "seeds": "per problem"})


def sample_stage(cfg: Any, run_dir: Path, records: Sequence[dict], make_generator: Callable[[], Any]) -> list[dict]:
    """k graded samples per problem, resumable chunk by chunk; the finished file is reused on re-run.

    The partial file is a `xling.common.store` keyed by (id, language) whose first line holds
    `samples_key`: one made with other settings is started afresh, never reused."""
    from xling.derived.graded import sample_graded
    from xling.generate.completions import stable_seed

    r = cfg.rft
    final = run_dir / SAMPLES
    key = samples_key(cfg)
    if final.is_file() and lifecycle.stage_done(run_dir, "rft_samples", key):
        console.print(f"RFT samples: reusing {final}", markup=False)
        return read_jsonl(final)
    store = Store(run_dir / PARTIAL, key=("id", "lang"), fingerprint=key, valid=lambda rec: "samples" in rec)
    todo = [x for x in records if (x["id"], x["lang"]) not in store]
    if todo:
        done = len(records) - len(todo)
        console.print(f"RFT sampling: {r.samples} answers for each of {len(todo)} problems"
                      + (f" ({done} done earlier)" if done else ""), markup=False)
        sample_graded(todo, make_generator, lambda chunk: store.append([sample_row(*c) for c in chunk]),
                      messages=lambda x: x["prompt"], seed_of=lambda x: stable_seed(cfg.seed, "rft", x["id"], x["lang"]),
                      gold=lambda x: (x["answer"], x["lang"], x.get("kind") or "math"), n=r.samples,
                      temperature=r.temperature, top_p=r.top_p, max_tokens=r.max_tokens, seed=cfg.seed,
                      chunk=r.chunk, label="sample")
    rows = [store.get((x["id"], x["lang"])) for x in records]
    atomic_write_jsonl(final, rows)
    lifecycle.mark_stage(run_dir, "rft_samples", key)
    store.remove()
    return rows


def sample_row(x: dict, samples: Sequence[Any], grades: Sequence[Any]) -> dict:
    """One problem's stored row: its samples, each graded (each problem's samples are seeded from the
    run's seed and the problem's id and language, whatever chunk it falls in)."""
    items = [{"text": s.text, "finish_reason": s.finish_reason, "correct": bool(g.correct), "extracted": g.extracted}
             for s, g in zip(samples, grades)]
    return {"id": x["id"], "lang": x["lang"], "kind": x.get("kind"), "answer": x["answer"],
            "correct": sum(i["correct"] for i in items), "samples": items}


def select(samples: Sequence[dict], records: Sequence[dict], keep: int) -> list[tuple[dict, str]]:
    """(training-set record, answer) pairs: up to `keep` distinct correct, complete answers per problem."""
    by_key = {(x["id"], x["lang"]): x for x in records}
    pairs = []
    for row in samples:
        seen: set[str] = set()
        for s in row["samples"]:
            text = s["text"]
            if not s["correct"] or s.get("finish_reason") == "length" or not text.strip() or text in seen:
                continue
            seen.add(text)
            pairs.append((by_key[(row["id"], row["lang"])], text))
            if len(seen) == keep:
                break
    return pairs


def sampling_summary(samples: Sequence[dict], pairs: Sequence[tuple[dict, str]]) -> dict:
    """Per language: problems, sample accuracy, share of problems solved at least once, answers kept."""
    stats: dict[str, Counter] = defaultdict(Counter)
    for row in samples:
        c = stats[row["lang"]]
        c["problems"] += 1
        c["samples"] += len(row["samples"])
        c["correct"] += row["correct"]
        c["solved"] += row["correct"] > 0
    for rec, _ in pairs:
        stats[rec["lang"]]["kept"] += 1
    out = {}
    for lang, c in sorted(stats.items()):
        out[lang] = {"problems": c["problems"], "samples": c["samples"],
                     "accuracy": c["correct"] / c["samples"] if c["samples"] else None,
                     "solved": c["solved"] / c["problems"] if c["problems"] else None, "kept": c["kept"]}
    return out


def show(summary: dict) -> None:
    rows = [[lang, s["problems"], s["samples"], f"{s['accuracy']:.3f}", f"{s['solved']:.3f}", s["kept"]]
            for lang, s in summary.items()]
    print_table("RFT sampling", ["lang", "problems", "samples", "accuracy", "solved", "kept"], rows,
                note="accuracy: share of correct samples; solved: problems with at least one correct sample")


def sample_in_subprocess(run_dir: Path) -> None:
    """Run the sampling stage in a fresh process (vLLM then frees all its GPU memory on exit)."""
    import os

    from xling.common.config import ROOT

    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    code = subprocess.run([sys.executable, "-m", "xling.train.rft", str(Path(run_dir).resolve())], env=env).returncode
    if code != 0:
        raise XlingError(f"RFT sampling stopped (exit code {code}); see the messages above. Run the same command "
                         "again to continue from the last finished chunk")


def run(cfg: Any, run_dir: Path, *, make_generator: Callable[[], Any] | None = None,
        extra_callbacks: Sequence[Any] = ()) -> dict:
    """RFT: sample, select, SFT. `make_generator` replaces the real generator (tests)."""
    run_dir = Path(run_dir)
    plan, done = lifecycle.start(cfg, run_dir, "rft")
    if done is not None:
        return done
    records = lifecycle.trainset_stage(cfg, run_dir)
    model_path = lifecycle.model_path(cfg, run_dir)
    backend = generator_backend(cfg, plan)
    with lifecycle.main_first():  # under accelerate launch the main process samples, the others reuse its file
        if make_generator is None and backend == "vllm" and not lifecycle.stage_done(run_dir, "rft_samples",
                                                                                samples_key(cfg)):
            sample_in_subprocess(run_dir)
        samples = sample_stage(cfg, run_dir, records,
                               make_generator or (lambda: open_generator(cfg, backend, model_path)))
    pairs = select(samples, records, cfg.rft.keep)
    summary = sampling_summary(samples, pairs)
    if lifecycle.is_main():
        show(summary)
    if not pairs:
        total = sum(len(s["samples"]) for s in samples)
        raise XlingError(f"RFT kept no answers: none of the {total} samples was correct and complete; raise "
                         "rft.samples or rft.max_tokens, or start from a stronger model")
    info = fit_sft(cfg, run_dir, plan, pairs, {"method": "rft", "sampling": summary, "generator": backend},
                   extra_callbacks)
    return lifecycle.summary(run_dir, info, {"sampling": summary})


def main(argv: list[str] | None = None) -> int:
    """`python -m xling.train.rft RUN_DIR`: the sampling stage of the RFT run in RUN_DIR."""
    from types import SimpleNamespace

    from xling.common.console import module_main
    from xling.runs.folder import run_recipe
    from xling.train.config import RftRecipe as Config

    run_dir = Path((sys.argv[1:] if argv is None else argv)[0])

    def work() -> None:
        cfg = run_recipe(run_dir, Config)
        plan = SimpleNamespace(cuda=backends.cuda_available())  # all the generator choice needs: no unsloth import
        records = read_jsonl(run_dir / "trainset.jsonl")
        model_path = lifecycle.model_path(cfg, run_dir)
        backend = generator_backend(cfg, plan)
        sample_stage(cfg, run_dir, records, lambda: open_generator(cfg, backend, model_path))

    return module_main(work)


if __name__ == "__main__":
    sys.exit(main())
