"""Recipe values every task shares are checked where their key is declared, before any work: seeds,
optimizer and scheduler names, gradient norms, worker counts, token counts and context lengths,
bootstrap replicates within memory. Each refusal is one line, exit 2, and leaves no run folder."""

from __future__ import annotations

import pytest

from xling.common import checks


def refusal(run_cli, capsys, *args: str) -> str:
    """The one error line a recipe check prints for `args` (a dry run: refused with exit 2, before any work)."""
    assert run_cli(*args, "--dry-run") == 2
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("args, message", [
    (["evaluate", "model=tiny", "seed=-1"], "recipe key 'seed': must be a whole number from 0 to 4294967295"),
    (["transfer", "table=t.csv", "base=a", "trained=b", "seed=-1"], "recipe key 'seed': must be a whole number"),
    (["analyze", "table=t.csv", "seed=4294967296"], "recipe key 'seed': must be a whole number"),
    (["grpo-en", "seed=-1"], "recipe key 'seed': must be a whole number"),
    (["grpo-en", "data.seed=-3"], "recipe key 'data.seed': must be a whole number"),
    (["grpo-en", "train.optim=sgdx"], "recipe key 'train.optim': 'sgdx' is not a transformers optimizer (did you "
                                      "mean 'sgd'?)"),
    (["sft", "train.lr_scheduler=wobbly"], "recipe key 'train.lr_scheduler': 'wobbly' is not a transformers "
                                              "scheduler; choose one of: linear, cosine"),
    (["grpo-en", "train.max_grad_norm=nan"], "recipe key 'train.max_grad_norm': must be a finite number above 0"),
    (["grpo-en", "train.max_grad_norm=-1"], "recipe key 'train.max_grad_norm': must be a finite number above 0"),
    (["grpo-en", "train.weight_decay=inf"], "recipe key 'train.weight_decay': must be a finite number"),
    (["grade", "input=x.jsonl", "workers=1000000"], "recipe key 'workers': 1000000 worker processes is more than "),
    (["evaluate", "model=tiny", "score.workers=1000000"], "recipe key 'score.workers': 1000000 worker processes"),
    (["grpo-en", "rewards.workers=1000000"], "recipe key 'rewards.workers': 1000000 worker processes is more than"),
    (["evaluate", "model=tiny", "gen.max_tokens=1e15"], "recipe key 'gen.max_tokens': 1,000,000,000,000,000 tokens "
                                                        "is more than any model handles"),
    (["evaluate", "model=tiny", "gen.max_model_len=0"], "recipe key 'gen.max_model_len': must be at least 1, got 0"),
    (["evaluate", "model=tiny", "gen.max_model_len=100", "gen.max_tokens=200"],
     "recipe key 'gen.max_model_len': 100 tokens of context cannot hold answers of max_tokens=200"),
    (["rft", "rft.max_tokens=1e12"], "recipe key 'rft.max_tokens': 1,000,000,000,000 tokens is more than"),
    (["grpo-en", "grpo.max_completion_length=1e12"], "recipe key 'grpo.max_completion_length': 1,000,000,000,000"),
    (["pivot", "pivot.max_tokens=1e12"], "recipe key 'pivot.max_tokens': 1,000,000,000,000 tokens"),
    (["translate", "max_new_tokens=1e12"], "recipe key 'max_new_tokens': 1,000,000,000,000 tokens"),
    (["demo", "max_tokens=1e12"], "recipe key 'max_tokens': 1,000,000,000,000 tokens is more than any model"),
    (["evaluate", "model=tiny", "n_boot=1e12"], "recipe key 'n_boot': 1,000,000,000,000 bootstrap replicates need "
                                                "at least 14.6 TiB of memory (16 bytes each), more than the"),
    (["demo", "n_boot=1e12"], "recipe key 'n_boot': 1,000,000,000,000 bootstrap replicates need at least"),
    (["transfer", "table=t.csv", "base=a", "trained=b", "n_boot=1e12"], "recipe key 'n_boot': 1,000,000,000,000"),
    (["analyze", "table=t.csv", "n_boot=1e12"], "recipe key 'n_boot': 1,000,000,000,000 bootstrap replicates"),
    (["parallel-scaling", "analyze.n_boot=1e12"], "recipe key 'analyze.n_boot': 1,000,000,000,000 bootstrap"),
])
def test_bad_values_are_refused_in_one_line_before_work(run_cli, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setattr(checks, "available_memory", lambda: 64 * 2**30)
    monkeypatch.setattr(checks, "cores", lambda: 4)
    rc = run_cli(*args, "out=run")
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith(f"error: {message}"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_the_bounds_say_their_reason():
    assert checks.workers_problem(17) is None or checks.cores() * 4 < 17
    assert checks.seed_problem(0) is None and checks.seed_problem(2**32 - 1) is None
    assert checks.seed_problem(2**32) is not None
    assert checks.norm_problem(0) is None and checks.norm_problem(1.0) is None
    assert checks.tokens_problem(checks.MAX_TOKENS) is None and checks.tokens_problem(checks.MAX_TOKENS + 1)
    assert checks.length_problem(100, None) is None and checks.length_problem(100, 100) is None


def test_workers_bound_is_four_per_core(monkeypatch):
    monkeypatch.setattr(checks, "cores", lambda: 3)
    assert checks.workers_problem(12) is None
    assert checks.workers_problem(13) == ("13 worker processes is more than 12 (4 × the 3 cores here): each is a "
                                          "process of its own, and more than the cores only slows the work down; "
                                          "give at most 12")


def test_optimizer_and_scheduler_names_are_transformers_own():
    """The lists are copies (a recipe is checked without importing torch): they must stay equal."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    assert sorted(checks.OPTIMIZERS) == sorted(o.value for o in OptimizerNames)
    assert sorted(checks.SCHEDULERS) == sorted(s.value for s in SchedulerType)


def test_the_bootstrap_refuses_what_memory_cannot_hold_before_allocating(monkeypatch):
    from xling.analysis import metrics as M
    from xling.common.errors import XlingError

    items = M.ItemScores.from_records([{"model": m, "benchmark": "mgsm", "lang": l, "id": str(i), "score": i % 2}
                                       for m in ("a", "b") for l in ("en", "de") for i in range(10)])
    monkeypatch.setattr(checks, "available_memory", lambda: 10**6)
    with pytest.raises(XlingError, match=r"^n_boot=100000: the bootstrap needs about 3\.1 MiB of memory \(4 "
                                         r"accuracies per replicate\), more than the 976\.6 KiB available"):
        M.bootstrap(items, lambda acc: acc["a"]["mgsm"]["en"], n_boot=100_000)
    assert M.bootstrap(items, lambda acc: acc["a"]["mgsm"]["en"], n_boot=1000) is not None


# The scoring keys (xling.grading.settings.ScoreSection): evaluation's `score.*`, grade's flat keys and training's
# `rewards.*` grading keys are one declaration, with one default and one check.
SCORING = [(["evaluate", "model=tiny"], "score."), (["observational", "pairs=[{trained: a/b, initial: c/d}]"], "score."),
           (["grade", "input=x.jsonl"], ""), (["grpo-en"], "rewards."), (["pivot-reward"], "rewards.")]


@pytest.mark.parametrize("key, value, message", [
    ("min_chars", "-1", "must be 0 or more, got -1"),
    ("timeout", "0", "must be a number of seconds above 0 and at most"),
    ("workers", "-1", "must be 0 (work in this process) or more, got -1"),
    ("langid", "fasttext", "'fasttext' is not allowed; choose one of: langdetect, lingua, langid"),
])
@pytest.mark.parametrize("args, prefix", SCORING, ids=lambda v: v[0] if isinstance(v, list) else None)
def test_scoring_keys_are_checked_alike_everywhere(run_cli, capsys, args, prefix, key, value, message):
    assert refusal(run_cli, capsys, *args, f"{prefix}{key}={value}").startswith(
        f"error: recipe key '{prefix}{key}': {message}")


def test_scoring_settings_have_one_default_everywhere():
    from dataclasses import fields

    from xling.common.config import build
    from xling.grading.settings import ScoreSection
    from xling.tasks import evaluate, grade
    from xling.train.config import RewardsConfig

    names = [f.name for f in fields(ScoreSection)]
    assert names == ["langid", "min_chars", "reasoning_only", "timeout", "workers"]
    score = build(evaluate.Config, {"task": "evaluate", "model": "tiny"}).score
    flat = build(grade.Config, {"task": "grade", "input": "x.jsonl"})
    rewards = RewardsConfig()
    for section in (score, flat, rewards):
        assert isinstance(section, ScoreSection)
        assert {n: getattr(section, n) for n in names} == {"langid": "langdetect", "min_chars": 20,
                                                           "reasoning_only": False, "timeout": 5.0, "workers": None}


# The analysis keys (xling.analysis.settings): task analyze's, transfer's, the evaluations' and a sweep's `analyze:`
# section are one declaration with one check.
ANALYSES = [(["analyze", "table=t.csv"], ""), (["transfer", "table=t.csv", "base=a", "trained=b"], ""),
            (["evaluate", "model=tiny"], ""), (["observational", "pairs=[{trained: a/b, initial: c/d}]"], ""),
            (["parallel-scaling"], "analyze.")]


@pytest.mark.parametrize("key, value, message", [
    ("n_boot", "1", "must be at least 2 (1000 gives 95% intervals), got 1"),
    ("out_of_domain", "math500,aime24", "math500 cannot be both in- and out-of-domain"),
    ("mti_policy", "strict", "'strict' is not allowed; choose one of: defined, paper"),
])
@pytest.mark.parametrize("args, prefix", ANALYSES, ids=lambda v: v[0] if isinstance(v, list) else None)
def test_analysis_keys_are_checked_alike_everywhere(run_cli, capsys, args, prefix, key, value, message):
    assert refusal(run_cli, capsys, *args, f"{prefix}{key}={value}") == f"error: recipe key '{prefix}{key}': {message}"


@pytest.mark.parametrize("args, prefix", [(["analyze", "table=t.csv"], ""), (["evaluate", "model=tiny"], ""),
                                          (["parallel-scaling"], "analyze.")])
def test_study_keys_are_checked_alike(run_cli, capsys, args, prefix):
    assert refusal(run_cli, capsys, *args, f"{prefix}fit_from=0") == (
        f"error: recipe key '{prefix}fit_from': must be at least 1")
    assert refusal(run_cli, capsys, *args, f"{prefix}contrasts={{a: [x]}}") == (
        f"error: recipe key '{prefix}contrasts.a': name two members: [a, b] (reported as a − b)")


def test_a_sweep_hands_its_whole_analysis_section_to_analyze(monkeypatch, tmp_path):
    """Every key of the sweep's `analyze:` section reaches the analysis (none is copied by hand)."""
    from types import SimpleNamespace

    from xling.analysis.settings import ScalingSection
    from xling.common.config import build, to_dict
    from xling.tasks import analyze, sweep

    cfg = build(sweep.Config, {"task": "sweep", "out": str(tmp_path), "sweep": {"members": {"a": {}}},
                               "analyze": {"n_boot": 7, "mti_policy": "paper", "fit_from": 3, "paper_curve": False,
                                           "contrasts": {"d": ["a", "b"]}, "table_langs": ["en", "zh"], "plots": False,
                                           "in_domain": ["mgsm"], "out_of_domain": ["gpqa"]}})
    seen = {}
    monkeypatch.setattr(analyze, "run", lambda acfg, run_dir, members=None: seen.setdefault("cfg", acfg) and {})
    base = SimpleNamespace(run_dir=tmp_path / "bases" / "base")
    sweep.aggregate(cfg, SimpleNamespace(bases={"base": base}, members=[]), tmp_path)
    got = seen["cfg"]
    assert {k: v for k, v in to_dict(got).items() if k in to_dict(cfg.analyze)} == to_dict(cfg.analyze)
    assert set(to_dict(ScalingSection())) == set(to_dict(cfg.analyze))


# The keys every evaluation recipe has (xling.evaluation.settings.EvalSection): one declaration, one check.
@pytest.mark.parametrize("args", [["evaluate", "model=tiny"], ["observational", "pairs=[{trained: a/b, initial: c/d}]"],
                                  ["probes", "base=tiny", "models=[{name: rl, adapter: x}]"]],
                         ids=lambda v: v[0])
@pytest.mark.parametrize("key, value, message", [
    ("limit", "0", "must be at least 1 (or null for every problem)"),
    ("langs", "xx", "unknown language 'xx'"),
    ("gen.chunk", "-1", "chunk must be 0 (automatic) or more and batch_size at least 1"),
    ("gen.dtype", "int8", "'int8' is not a dtype generation can load; choose one of: auto, bfloat16, float16, float32"),
])
def test_evaluation_keys_are_checked_alike(run_cli, capsys, args, key, value, message):
    assert refusal(run_cli, capsys, *args, f"{key}={value}").startswith(f"error: recipe key '{key}': {message}")


def test_evaluation_recipes_share_one_declaration():
    from dataclasses import fields

    from xling.evaluation.settings import BenchmarkSection, EvalSection
    from xling.tasks import evaluate, observational, probes

    shared = [f.name for f in fields(EvalSection)]
    for cfg in (evaluate.Config, observational.Config, probes.Config):
        assert issubclass(cfg, EvalSection) and set(shared) <= {f.name for f in fields(cfg)}
    assert issubclass(evaluate.Config, BenchmarkSection) and issubclass(observational.Config, BenchmarkSection)
    # observational declares only its own keys: the pairs and their model names
    assert [n for n in observational.Config.__annotations__] == ["pairs", "models"]
