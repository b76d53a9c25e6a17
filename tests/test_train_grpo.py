"""GRPO through TRL on the tiny model with the real rewards: LoRA (peft) and full-parameter modes."""

from __future__ import annotations

import json

import pytest

from xling.common.errors import XlingError
from xling.common.io import read_jsonl
from xling.tasks import train_grpo
from xling.train import grpo
from helpers import with_overrides

pytestmark = pytest.mark.slow


def grpo_cfg(model, **over):
    data = {
        "task": "train-grpo", "seed": 0, "model": {"name": str(model)},
        "data": {"source": "synth", "n": 4, "langs": ["en", "de"]},
        "train": {"backend": "peft", "learning_rate": 1e-2, "max_steps": 2, "questions_per_step": 2, "batch_size": 4,
                  "gradient_checkpointing": False, "save_steps": 2},
        "lora": {"r": 8, "alpha": 16, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        "grpo": {"num_generations": 4, "max_completion_length": 16, "max_prompt_length": 512},
        "rewards": {"workers": 0, "min_chars": 1},
    }
    return with_overrides(train_grpo.Config, data, over)


def test_grpo_lora_trains_with_the_real_rewards(tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir = tmp_path / "run"
    metrics = grpo.run(grpo_cfg(tiny_model), run_dir)
    assert metrics["steps"] == 2 and metrics["backend"] == "peft" and metrics["lora"]
    assert metrics["reward_weights"] == {"accuracy_reward": 0.8, "format_reward": 0.1, "language_reward": 0.1}
    assert metrics["batch"] == {"questions_per_step": 2, "grad_accum": 2, "completions_per_step": 8, "processes": 1}
    # the weights changed: LoRA B starts at zero
    adapter = load_file(run_dir / "final" / "adapter_model.safetensors")
    lora_b = [t for k, t in adapter.items() if "lora_B" in k]
    assert lora_b and max(t.abs().max().item() for t in lora_b) > 0
    # per-language metrics from the rewards (accuracy, on-target) and the total reward, logged with TRL's
    log = read_jsonl(run_dir / "train_log.jsonl")
    steps = [r for r in log if "reward" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for lang in ("en", "de"):
        for metric in ("reward", "accuracy", "on_target"):
            assert f"{metric}/{lang}" in steps[0]
            assert set(metrics["per_lang"][lang][metric]) == {"first", "last", "steps"}
    assert "rewards/accuracy_reward/mean" in steps[0] and "completions/mean_length" in steps[0]
    # the run folder records the recipe's training set, environment and the final adapter + tokenizer
    assert (run_dir / "trainset.jsonl").is_file() and (run_dir / "trainset_summary.json").is_file()
    env = json.loads((run_dir / "train_env.json").read_text())
    assert env["seed"] == 0 and env["plan"]["backend"] == "peft" and env["packages"]["trl"] == "1.14.2"
    assert env["cuda"]["available"] is False
    final = run_dir / "final"
    for name in ("adapter_config.json", "tokenizer.json", "chat_template.jinja", "xling_train.json"):
        assert (final / name).is_file(), name
    # loads the standard way and generates
    tok = AutoTokenizer.from_pretrained(final)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), final)
    ids = tok("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 3 or out[0, -1].item() == tok.eos_token_id


def test_a_finished_run_is_not_trained_again(tiny_model, tmp_path, capsys):
    run_dir = tmp_path / "run"
    grpo.run(grpo_cfg(tiny_model, **{"train.max_steps": 1}), run_dir)
    before = (run_dir / "final" / "adapter_model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    again = grpo.run(grpo_cfg(tiny_model, **{"train.max_steps": 1}), run_dir)
    out = capsys.readouterr().out
    assert "already holds the model this recipe trains; training skipped" in out
    assert "training set: reusing" not in out  # nothing was rebuilt either
    assert (run_dir / "final" / "adapter_model.safetensors").stat().st_mtime_ns == before
    assert again["steps"] == 1
    # other training settings in the same folder never relabel that model: refused while its checkpoints
    # are there (nothing touched), trained again from scratch with resume=never
    with pytest.raises(XlingError, match=r"were made by a different recipe \(differs in: lora.r\)"):
        grpo.run(grpo_cfg(tiny_model, **{"train.max_steps": 1, "lora.r": 16}), run_dir)
    assert (run_dir / "final" / "adapter_model.safetensors").stat().st_mtime_ns == before
    capsys.readouterr()
    retrained = grpo.run(grpo_cfg(tiny_model, **{"train.max_steps": 1, "lora.r": 16, "resume": "never"}), run_dir)
    assert "was trained with other settings (differs in: lora.r); training again" in capsys.readouterr().out
    assert retrained["steps"] == 1 and retrained["resumed_from_step"] is None
    assert json.loads((run_dir / "final" / "adapter_config.json").read_text())["r"] == 16
    assert json.loads((run_dir / "final" / "xling_train.json").read_text())["recipe"]["lora"]["r"] == 16


def test_logged_completions_stay_out_of_the_terminal(tmp_path, capsys):
    """grpo.log_completions writes parquet files; TRL's tables of every completion are not printed."""
    from trl import GRPOConfig
    from trl.trainer.utils import print_prompt_completions_sample

    from xling.train import backends

    c = grpo_cfg("tiny", **{"grpo.log_completions": True})
    plan = backends.resolve(c, "grpo", c.grpo.num_generations)
    args = GRPOConfig(**grpo.grpo_args(c, plan, tmp_path / "ck", tmp_path, [0.8, 0.1, 0.1]))
    assert args.log_completions and args.num_completions_to_print == 0
    capsys.readouterr()
    print_prompt_completions_sample(["2+2?"], ["4"], {"accuracy": [1.0]}, [0.5], 1, args.num_completions_to_print)
    assert capsys.readouterr().out == ""


def test_grpo_full_parameter_mode(tiny_model, tmp_path):
    from safetensors.torch import load_file

    run_dir = tmp_path / "full"
    metrics = grpo.run(grpo_cfg(tiny_model, **{"train.backend": "full", "train.max_steps": 1,
                                               "train.learning_rate": 1e-3}), run_dir)
    assert metrics["backend"] == "full" and not metrics["lora"]
    final = load_file(run_dir / "final" / "model.safetensors")
    base = load_file(tiny_model / "model.safetensors")
    assert (run_dir / "final" / "config.json").is_file()
    assert not (run_dir / "final" / "adapter_config.json").exists()
    assert max((final[k] - base[k]).abs().max().item() for k in base) > 0


def test_string_prompts_with_prefix_and_length_filter(tiny_model):
    from transformers import AutoTokenizer

    from xling.data.languages import LANGUAGES
    from xling.data.prompts import build_messages
    from xling.train.prompts import adds_bos, prompt_template, string_prompts

    tok = AutoTokenizer.from_pretrained(tiny_model)
    records = [{"prompt": build_messages({"question": "What is 2 + 2?" * (1 + 20 * i), "lang": lang}, prefix=True),
                "lang": lang, "answer": "4"} for i, lang in enumerate(["en", "de", "ja"])]
    kept, report = string_prompts(records, tok, prompt_template(tok), max_tokens=None)
    assert not adds_bos(tok)
    assert kept[1]["prompt"].endswith("<|im_start|>assistant\n" + LANGUAGES["de"].prefix)  # the model continues it
    assert kept[1]["prompt"].count("<|im_start|>assistant") == 1
    short = sorted(len(tok(r["prompt"])["input_ids"]) for r in kept)
    kept, report = string_prompts(records, tok, prompt_template(tok), max_tokens=short[0])
    assert [r["lang"] for r in kept] == ["en"]
    assert report["dropped"] == 2 and report["dropped_by_lang"] == {"de": 1, "ja": 1}
    with pytest.raises(XlingError, match="every training prompt is longer than 5 tokens"):
        string_prompts(records, tok, prompt_template(tok), max_tokens=5)


def test_base_model_borrows_the_instruct_template(tiny_base_model, tmp_path):
    with pytest.raises(XlingError, match="has no chat template"):
        grpo.run(grpo_cfg(tiny_base_model), tmp_path / "no-template")
    metrics = grpo.run(grpo_cfg(tiny_base_model, **{"model.template_from": "chatml", "train.max_steps": 1}),
                       tmp_path / "base")
    assert metrics["steps"] == 1
    assert "<|im_start|>" in (tmp_path / "base" / "final" / "chat_template.jinja").read_text()
