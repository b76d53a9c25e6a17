"""Sampling limits (vLLM 0.30.0's, `xling.generate.sampling`) checked where recipes accept sampling settings.

Every setting vLLM's SamplingParams would refuse after an engine is up — a temperature outside
[0, 2] or not finite, greedy decoding with several samples — is refused by the recipe check
with a one-line error naming the key (exit code 2), before any model is loaded. tests/test_generate.py
shows both generation backends refusing the same settings at `chat`.
"""

from __future__ import annotations

import pytest

from xling.generate import sampling

PAIR = "pairs=[{trained: tiny, initial: tiny-base, paradigm: RL, gen: {temperature: 3.0}}]"


@pytest.mark.parametrize("args,message", [
    (["evaluate", "model=m", "gen.temperature=inf"],
     "recipe key 'gen.temperature': must be a finite number in [0, 2], got inf"),
    (["evaluate", "model=m", "gen.temperature=nan"], "recipe key 'gen.temperature': must be a finite number"),
    (["evaluate", "model=m", "gen.temperature=2.5"], "recipe key 'gen.temperature': must be in [0, 2] (0: greedy)"),
    (["evaluate", "model=m", "gen.temperature=-1"], "recipe key 'gen.temperature': must be in [0, 2]"),
    (["evaluate", "model=m", "gen.top_p=inf"], "recipe key 'gen.top_p': must be a number in (0, 1], got inf"),
    (["evaluate", "model=m", "benchmarks=mgsm,aime24", "gen.temperature=0"],
     "recipe key 'gen.n.aime24': 16 samples at temperature 0 (greedy) would be 16 copies of one answer"),
    (["evaluate", "model=m", "gen.temperature=0", "gen.n.mgsm=4"], "recipe key 'gen.n.mgsm': 4 samples at temperature 0"),
    (["observational", PAIR], "recipe key 'pairs[0].gen.temperature': must be in [0, 2]"),
    (["observational", "gen.temperature=0", "benchmarks=aime25"], "recipe key 'gen.n.aime25': 16 samples at "
                                                                   "temperature 0"),
    (["rft", "rft.temperature=2.5"], "recipe key 'rft.temperature': must be in [0, 2]"),
    (["rft", "rft.temperature=0"], "recipe key 'rft.temperature': must be above 0: RFT samples several different"),
    (["rft", "rft.top_p=nan"], "recipe key 'rft.top_p': must be a number in (0, 1]"),
    (["grpo-en", "grpo.temperature=0"], "recipe key 'grpo.temperature': must be above 0: GRPO samples several"),
    (["grpo-en", "grpo.temperature=inf"], "recipe key 'grpo.temperature': must be a finite number"),
    (["grpo-en", "grpo.beta=nan"], "recipe key 'grpo.beta': must be a finite number, got nan"),
    (["translate", "gpu_memory_utilization=1.5"], "recipe key 'gpu_memory_utilization': must be in (0, 1]"),
])
def test_recipes_refuse_what_vllm_would(run_cli, capsys, args, message):
    assert run_cli(*args, "--dry-run") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("args", [
    ["evaluate", "model=m", "gen.temperature=0"],  # greedy, one sample per question (AIME not evaluated)
    ["evaluate", "model=m", "benchmarks=aime24", "gen.temperature=0", "gen.n.aime24=1"],
    ["evaluate", "model=m", "gen.temperature=2"],
    ["rft", "rft.temperature=0", "rft.samples=1"],
    ["observational", "pairs=[{trained: a/b, initial: c/d, gen: {temperature: 1.0, top_p: 0.7, max_tokens: 20480}}]"],
])
def test_settings_vllm_accepts_pass(run_cli, capsys, args):
    assert run_cli(*args, "--dry-run") == 0, capsys.readouterr().err


# Every recipe section that samples (`xling.generate.sampling.SamplingSection` / `Sampling`) refuses a value out of
# vLLM's range at the recipe check with the same one line, naming its own key.
SECTIONS = [
    (["evaluate", "model=m"], "gen.", "max_tokens"),
    (["observational", "pairs=[{trained: a/b, initial: c/d}]"], "gen.", "max_tokens"),
    (["probes", "base=tiny", "models=[{name: rl, adapter: x}]"], "gen.", "max_tokens"),
    (["pivot"], "pivot.", "max_tokens"),
    (["pivot-reward"], "pivot.", "max_tokens"),
    (["grpo-en"], "grpo.", "max_completion_length"),
    (["rft"], "rft.", "max_tokens"),
]
OUT_OF_RANGE = [("temperature", "3"), ("temperature", "-0.5"), ("top_p", "0"), ("top_p", "1.5"), ("tokens", "0")]


def expected(setting: str, value: str) -> str:
    key = "max_tokens" if setting == "tokens" else setting
    return sampling.problem(**{"temperature": 1.0, "top_p": 1.0, "max_tokens": 1,
                               key: int(value) if key == "max_tokens" else float(value)})[1]


@pytest.mark.parametrize("setting,value", OUT_OF_RANGE)
@pytest.mark.parametrize("args,prefix,tokens", SECTIONS, ids=lambda v: v[0] if isinstance(v, list) else None)
def test_every_sampling_section_refuses_alike(run_cli, capsys, args, prefix, tokens, setting, value):
    key = tokens if setting == "tokens" else setting
    assert run_cli(*args, f"{prefix}{key}={value}", "--dry-run") == 2
    assert capsys.readouterr().err.strip() == f"error: recipe key '{prefix}{key}': {expected(setting, value)}"


@pytest.mark.parametrize("setting,value", OUT_OF_RANGE)
def test_a_pairs_own_settings_refused_alike(run_cli, capsys, setting, value):
    key = "max_tokens" if setting == "tokens" else setting
    assert run_cli("observational", f"pairs=[{{trained: a/b, initial: c/d, gen: {{{key}: {value}}}}}]", "--dry-run") == 2
    assert capsys.readouterr().err.strip() == f"error: recipe key 'pairs[0].gen.{key}': {expected(setting, value)}"


def test_section_check_names_its_token_field():
    from xling.common.config import Invalid
    from xling.train.config import GrpoConfig

    with pytest.raises(Invalid) as e:
        GrpoConfig(max_completion_length=0).check()
    assert (e.value.key, e.value.message) == ("max_completion_length", "must be at least 1, got 0")
    with pytest.raises(Invalid) as e:
        sampling.SamplingSection(temperature=0).check_samples(4, "n.mgsm")
    assert e.value.key == "n.mgsm" and e.value.message.startswith("4 samples at temperature 0 (greedy)")


def test_problem_names_the_setting():
    assert sampling.problem(temperature=0.6, top_p=0.95, n=16, max_tokens=8192) is None
    assert sampling.problem(temperature=0.0, top_p=1.0, n=1) is None
    assert sampling.problem(temperature=0.0, top_p=1.0, n=2)[0] == "n"
    assert sampling.problem(temperature=2.0000001, top_p=1.0)[0] == "temperature"
    assert sampling.problem(temperature=1.0, top_p=0.0)[0] == "top_p"
    assert sampling.problem(temperature=1.0, top_p=1.0, max_tokens=0)[0] == "max_tokens"
    assert sampling.problem(temperature=True, top_p=1.0)[0] == "temperature"
