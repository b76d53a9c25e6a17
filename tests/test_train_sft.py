"""The baselines: SFT on reference solutions, and RFT (sample, keep the correct answers, SFT)."""

from __future__ import annotations

import json

import pytest

from xling.generate.completions import stable_seed

from xling.common.config import build
from xling.common.errors import XlingError
from xling.common.io import read_jsonl
from xling.tasks import train_rft, train_sft
from xling.train import rft, sft

pytestmark = pytest.mark.slow

TRAIN = {"backend": "peft", "learning_rate": 1e-2, "max_steps": 2, "questions_per_step": 4, "batch_size": 2,
         "gradient_checkpointing": False, "save_steps": 10}
LORA = {"r": 8, "alpha": 16, "targets": ["q_proj", "v_proj"]}


def sft_cfg(model, **extra):
    return build(train_sft.Config, {"task": "train-sft", "model": {"name": str(model)},
                                    "data": {"source": "synth", "n": 4, "langs": ["en", "sw"], "prefix": True},
                                    "train": TRAIN, "lora": LORA, **extra})


def rft_cfg(model, **rft_keys):
    return build(train_rft.Config, {"task": "train-rft", "model": {"name": str(model)},
                                    "data": {"source": "synth", "n": 3, "langs": ["en", "ja"]}, "train": TRAIN,
                                    "lora": LORA, "rft": {"samples": 4, "keep": 2, "chunk": 2, "max_tokens": 32,
                                                          **rft_keys}})


def test_sft_trains_on_the_reference_solutions(tiny_model, tmp_path):
    from safetensors.torch import load_file

    run_dir = tmp_path / "sft"
    metrics = sft.run(sft_cfg(tiny_model), run_dir)
    assert metrics["method"] == "sft" and metrics["steps"] == 2
    assert metrics["examples"]["kept"] == 8 and metrics["examples"]["dropped"] == 0
    adapter = load_file(run_dir / "final" / "adapter_model.safetensors")
    assert max(t.abs().max().item() for k, t in adapter.items() if "lora_B" in k) > 0
    assert (run_dir / "final" / "tokenizer.json").is_file()
    assert any("loss" in r for r in read_jsonl(run_dir / "train_log.jsonl"))


def test_sft_targets_and_prompts(tiny_model):
    from transformers import AutoTokenizer

    from xling.data.prompts import build_messages
    from xling.train.prompts import prompt_template

    records = [{"prompt": build_messages({"question": "2+2?", "lang": "en"}, prefix=True), "lang": "en", "id": "a",
                "answer": "4", "solution": "2 + 2 = 4."},
               {"prompt": build_messages({"question": "3+3?", "lang": "de"}), "lang": "de", "id": "b",
                "answer": "6", "solution": "3 + 3 = \\boxed{6}"},
               {"prompt": build_messages({"question": "?", "lang": "de"}), "lang": "de", "id": "c", "answer": "1",
                "solution": None}]
    pairs, missing = sft.targets_from_data(records)
    assert missing == {"de": 1}
    assert [t for _, t in pairs] == ["2 + 2 = 4.\n\n\\boxed{4}", "3 + 3 = \\boxed{6}"]
    tok = AutoTokenizer.from_pretrained(tiny_model)
    out, report = sft.sft_dataset(pairs, tok, prompt_template(tok), max_length=4096)
    assert out[0]["prompt"].endswith("I will start thinking in English.")
    assert out[0]["completion"].startswith(" 2 + 2")  # a new word after the prefix
    assert out[1]["prompt"].endswith("<|im_start|>assistant\n") and out[1]["completion"].startswith("3 + 3")
    with pytest.raises(XlingError, match="every SFT example is longer than sft.max_length=10 tokens"):
        sft.sft_dataset(pairs, tok, prompt_template(tok), max_length=10)


class FakeGenerator:
    """xling.generate's interface; answers right (twice, distinct), wrong, and cut off."""

    backend, adapter = "fake", None

    def __init__(self, answers: dict[str, str], fail_after: int | None = None):
        self.answers, self.fail_after, self.calls, self.closed = answers, fail_after, [], False
        self.model = "fake"

    def chat(self, conversations, *, n, temperature, top_p, max_tokens, seed, seeds=None):
        from xling.generate import Sample

        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        self.calls.append({"n": n, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
                           "seed": seed, "seeds": list(seeds) if seeds is not None else None,
                           "questions": [c[-1]["content"] for c in conversations]})
        out = []
        for conv in conversations:
            gold = self.answers[conv[-1]["content"]]
            texts = [(f"Working it out: \\boxed{{{gold}}}", "stop"), ("\\boxed{-12345}", "stop"),
                     (f"So the answer is {gold}", "stop"), (f"almost \\boxed{{{gold}}}", "length")]
            out.append([Sample(t, r, 5, i) for i, (t, r) in enumerate((texts * n)[:n])])
        return out

    def close(self):
        self.closed = True


def answers_of(run_dir):
    return {r["question"]: r["answer"] for r in read_jsonl(run_dir / "trainset.jsonl")}


def test_rft_keeps_correct_answers_and_trains(tiny_model, tmp_path):
    run_dir = tmp_path / "rft"
    gens = []

    def make():
        gens.append(FakeGenerator(answers_of(run_dir)))
        return gens[-1]

    metrics = rft.run(rft_cfg(tiny_model), run_dir, make_generator=make)
    gen = gens[0]
    assert gen.closed and len(gen.calls) == 3  # 6 problems in chunks of 2
    # each problem seeded from the run's seed and its id and language, whatever chunk it falls in
    records = read_jsonl(run_dir / "trainset.jsonl")
    assert [s for c in gen.calls for s in c["seeds"]] == [stable_seed(0, "rft", r["id"], r["lang"]) for r in records]
    assert len({s for c in gen.calls for s in c["seeds"]}) == 6
    assert {(c["n"], c["temperature"], c["max_tokens"]) for c in gen.calls} == {(4, 1.0, 32)}
    samples = read_jsonl(run_dir / "rft_samples.jsonl")
    assert len(samples) == 6 and all(s["correct"] == 3 for s in samples)  # the cut-off one is graded correct...
    assert metrics["sampling"]["ja"] == {"problems": 3, "samples": 12, "accuracy": 0.75, "solved": 1.0, "kept": 6}
    assert metrics["examples"]["kept"] == 12  # ...but never kept: 2 distinct complete answers per problem
    assert metrics["method"] == "rft" and metrics["steps"] == 2 and (run_dir / "final" / "adapter_config.json").is_file()
    # other sampling settings: sampled and trained again (with resume=never for the old checkpoints), never the
    # old samples or the old model under the new settings
    with pytest.raises(XlingError, match=r"were made by a different recipe \(differs in: rft.temperature\)"):
        rft.run(rft_cfg(tiny_model, temperature=0.7), run_dir, make_generator=make)
    cfg = rft_cfg(tiny_model, temperature=0.7)
    cfg.resume = "never"
    metrics = rft.run(cfg, run_dir, make_generator=make)
    assert len(gens) == 2 and {c["temperature"] for c in gens[1].calls} == {0.7}
    assert metrics["steps"] == 2 and json.loads((run_dir / "final" / "xling_train.json").read_text())[
        "recipe"]["rft"]["temperature"] == 0.7


def test_an_adapter_on_the_output_layer_trains_by_sft_and_by_rft_continuing_it(tiny_model, tmp_path):
    """lm_head among the LoRA targets (how a random tiny model can learn answers by heart): TRL's default chunked
    loss would bypass that layer's adapter and refuses it, so SFT, and RFT continuing the saved adapter (whose own
    lora.targets leave lm_head out), train with the plain loss through the adapted layer."""
    from safetensors.torch import load_file

    sft_dir = tmp_path / "sft"
    metrics = sft.run(sft_cfg(tiny_model, lora={**LORA, "targets": ["q_proj", "v_proj", "lm_head"]}), sft_dir)
    assert metrics["steps"] == 2 and metrics["ran"]["loss_type"] == "nll"
    adapter = load_file(sft_dir / "final" / "adapter_model.safetensors")
    assert max(t.abs().max().item() for k, t in adapter.items() if "lm_head.lora_B" in k) > 0
    run_dir = tmp_path / "rft"
    cfg = rft_cfg(tiny_model)
    cfg.model.adapter = str(sft_dir / "final")
    metrics = rft.run(cfg, run_dir, make_generator=lambda: FakeGenerator(answers_of(run_dir)))
    assert metrics["steps"] == 2 and metrics["ran"]["loss_type"] == "nll"
    trained = load_file(run_dir / "final" / "adapter_model.safetensors")
    assert any(not torch_equal(trained[k], adapter[k]) for k in adapter if "lm_head.lora_" in k)


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)


def test_sft_killed_after_its_last_checkpoint_ends_with_exactly_max_steps(tiny_model, tmp_path):
    """Killed between checkpoint-2 (= max_steps, mid-epoch) and final/, SFT saves that checkpoint as the final
    model: no step 3, the same weights as a run never interrupted."""
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    class Crash(Exception):
        pass

    class CrashAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise Crash

    keys = {"data": {"source": "synth", "n": 8, "langs": ["en", "sw"]}, "train": {**TRAIN, "save_steps": 2}}
    whole = sft.run(sft_cfg(tiny_model, **keys), tmp_path / "whole")  # 16 examples, 4 a step: 4 steps an epoch
    with pytest.raises(Crash):
        sft.run(sft_cfg(tiny_model, **keys), tmp_path / "broken", extra_callbacks=[CrashAfterSave()])
    assert not (tmp_path / "broken" / "final").exists()
    resumed = sft.run(sft_cfg(tiny_model, **keys), tmp_path / "broken")
    assert (whole["steps"], resumed["steps"], resumed["resumed_from_step"]) == (2, 2, 2)
    a = load_file(tmp_path / "whole" / "final" / "adapter_model.safetensors")
    b = load_file(tmp_path / "broken" / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in read_jsonl(tmp_path / "broken" / "train_log.jsonl") if "loss" in r] == [1, 2]


def test_rft_sampling_resumes_after_an_interruption(tiny_model, tmp_path):
    cfg = rft_cfg(tiny_model)
    run_dir = tmp_path / "rft"
    from xling.train import lifecycle

    run_dir.mkdir()
    records = lifecycle.trainset_stage(cfg, run_dir)
    first = FakeGenerator(answers_of(run_dir), fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        rft.sample_stage(cfg, run_dir, records, lambda: first)
    partial = read_jsonl(run_dir / rft.PARTIAL)  # the settings' fingerprint, then the first chunk's problems
    assert partial[0] == {"fingerprint": rft.samples_key(cfg)}
    assert [(r["id"], r["lang"]) for r in partial[1:]] == [(r["id"], r["lang"]) for r in records[:2]]
    assert not (run_dir / rft.SAMPLES).exists()
    second = FakeGenerator(answers_of(run_dir))
    rows = rft.sample_stage(cfg, run_dir, records, lambda: second)
    assert [s for c in second.calls for s in c["seeds"]] == [stable_seed(0, "rft", r["id"], r["lang"])
                                                             for r in records[2:]]  # the finished chunk is not sampled again
    assert [(r["id"], r["lang"]) for r in rows] == [(r["id"], r["lang"]) for r in records]
    assert not (run_dir / rft.PARTIAL).exists()
    rft.sample_stage(cfg, run_dir, records, lambda: pytest.fail("the finished stage is reused"))


def test_rft_with_nothing_correct_says_what_to_do(tiny_model, tmp_path):
    class Wrong(FakeGenerator):
        def chat(self, conversations, **kw):
            from xling.generate import Sample

            return [[Sample("no idea", "stop", 2, i) for i in range(kw["n"])] for _ in conversations]

    with pytest.raises(XlingError, match="RFT kept no answers: none of the 24 samples was correct"):
        rft.run(rft_cfg(tiny_model), tmp_path / "rft", make_generator=lambda: Wrong({}))


def test_rft_samples_through_the_real_hf_generator(tiny_model, tmp_path):
    pytest.importorskip("xling.generate")
    cfg = rft_cfg(tiny_model, samples=2, keep=1, max_tokens=4)
    from xling.train import lifecycle

    run_dir = tmp_path / "rft"
    run_dir.mkdir()
    records = lifecycle.trainset_stage(cfg, run_dir)[:2]
    rows = rft.sample_stage(cfg, run_dir, records, lambda: rft.open_generator(cfg, "hf", str(tiny_model)))
    assert len(rows) == 2 and all(len(r["samples"]) == 2 for r in rows)
    assert all(s["finish_reason"] in ("stop", "length") and isinstance(s["correct"], bool)
               for r in rows for s in r["samples"])


def test_rft_sampling_in_its_own_process(tiny_model, tmp_path):
    """The vLLM path samples in a fresh process (python -m xling.train.rft RUN_DIR); here with hf on CPU."""
    from xling.common.config import dump_yaml
    from xling.train import lifecycle

    cfg = rft_cfg(tiny_model, samples=2, keep=1, max_tokens=4, generator="hf")
    cfg.data.n = 1
    run_dir = tmp_path / "rft"
    run_dir.mkdir()
    (run_dir / "recipe.yaml").write_text(dump_yaml(cfg))
    records = lifecycle.trainset_stage(cfg, run_dir)
    rft.sample_in_subprocess(run_dir)
    rows = read_jsonl(run_dir / rft.SAMPLES)
    assert [(r["id"], r["lang"]) for r in rows] == [(r["id"], r["lang"]) for r in records]
    assert lifecycle.stage_done(run_dir, "rft_samples", rft.samples_key(cfg))
    (run_dir / "recipe.yaml").write_text("task: train-rft\nrft: {samples: 0}\n")
    with pytest.raises(XlingError, match=r"RFT sampling stopped \(exit code 2\)"):
        rft.sample_in_subprocess(run_dir)


def test_rft_samples_made_with_other_settings_are_not_reused(tiny_model, tmp_path):
    """An interrupted partial file sampled at another temperature is started afresh: every problem is
    sampled again, and none of the old rows reaches the finished file."""
    from xling.train import lifecycle

    run_dir = tmp_path / "rft"
    run_dir.mkdir()
    cfg = rft_cfg(tiny_model, temperature=0.7)
    records = lifecycle.trainset_stage(cfg, run_dir)
    with pytest.raises(KeyboardInterrupt):
        rft.sample_stage(cfg, run_dir, records, lambda: FakeGenerator(answers_of(run_dir), fail_after=1))
    other = rft_cfg(tiny_model, temperature=0.9)
    again = FakeGenerator(answers_of(run_dir))
    rows = rft.sample_stage(other, run_dir, records, lambda: again)
    assert [s for c in again.calls for s in c["seeds"]] == [stable_seed(0, "rft", r["id"], r["lang"]) for r in records]
    assert [c["temperature"] for c in again.calls] == [0.9] * 3
    assert len(rows) == len(records) == 6
