"""The planner: exact arithmetic of steps, rollouts, tokens, time and memory; refusals; the CPU warning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from xling.runs import registry
from xling.runs import folder
from xling.runs import cli
from xling.planning import hardware, plan
from xling.common.errors import XlingError
from xling.planning.hardware import GIB, GPUS, Gpu, match_gpu, model_shape
from xling.planning.plan import Estimate, estimate_evaluation, estimate_training, preflight

REPO = Path(__file__).resolve().parent.parent
N_15B = 1_543_714_304  # Qwen2.5-1.5B: its published parameter count
LORA_15B_R32 = 36_929_536  # LoRA r=32 on all 7 projections of its 28 layers
CPU = Gpu("cpu", "CPU", 16.0, cores=2)


def planned(recipe: str, *overrides: str) -> Estimate:
    cfg, _ = cli.resolve(recipe, list(overrides))
    return estimate_training(cfg)


def test_grpo_en_on_an_h100():
    est = planned("grpo-en", "plan.gpu=h100-80gb")
    # 1,000 prompts // 128 per step = 7 full steps (TRL drops the 8th, incomplete one); 128 x 16 rollouts each
    assert (est.steps, est.rollouts) == (7, 14_336)
    assert est.generated_tokens == 14_336 * 700
    assert est.trained_tokens == 7 * 2048 * (200 + 700)
    # 10N FLOP per trained token (forward, backward, recompute, old and reference log-probs: beta 0.001) at 25% of
    # 989 TFLOP/s; decode at 2N FLOP per token, 32 FLOP per byte of 3.35 TB/s
    train_s = 10 * N_15B * est.trained_tokens / (0.25 * 989e12)
    gen_s = est.generated_tokens / (32 * 3.35e12 / (2 * N_15B))
    assert est.hours == pytest.approx((train_s + gen_s) / 3600, rel=1e-12)
    assert est.hours == pytest.approx(0.3041, abs=1e-4) and est.step_seconds == pytest.approx(156.37, abs=0.01)
    # Unsloth shares the weights with vLLM's half of the GPU; activations: one layer of 8 x 4,296 tokens
    layer = 8 * 4296 * (7 * 1536 + 4 * 8960) * 2 / GIB
    assert est.memory == {"vLLM share": 39.6, "LoRA + Adam": round(LORA_15B_R32 * 16 / GIB, 2),
                          "activations": round(layer, 2), "CUDA context": 1.0}
    assert est.peak_vram_gib == pytest.approx(39.6 + LORA_15B_R32 * 16 / GIB + layer + 1.0)
    assert est.fits and est.exact and est.gpu == "h100-80gb" and est.gpus == 1
    text = "\n".join(est.lines())
    assert "104 prompt(s) wait each epoch" in text and "+ old log-probs 2N + reference 2N = 10N" in text
    assert "rollouts: 700 tokens on average (assumed; plan.completion_tokens=N, cap 4,096)" in text


def test_parallel_languages_epochs_iterations_and_max_steps():
    # English + 7 languages: 8,000 prompts -> 62 steps (64 wait)
    est = planned("grpo-parallel", "data.k=7", "plan.gpu=h100-80gb")
    assert (est.steps, est.rollouts) == (62, 62 * 2048)
    assert "8,000 // 128 = 62 step(s); TRL drops the incomplete last step, so 64 prompt(s) wait" in est.details[1]
    # each generation reused for 2 steps: twice the steps, the same rollouts
    est = planned("grpo-en", "plan.gpu=h100-80gb", "grpo.num_iterations=2", "train.epochs=1.5")
    assert (est.steps, est.rollouts) == (21, 11 * 2048)  # ceil(1.5 x 14) steps; ceil(21 / 2) generations
    est = planned("grpo-en", "plan.gpu=h100-80gb", "train.max_steps=3")
    assert (est.steps, est.rollouts, est.trained_tokens) == (3, 3 * 2048, 3 * 2048 * 900)
    # mix: data.n problems in all, not per language
    est = planned("grpo-en", "plan.gpu=h100-80gb", "data.build=mix", "data.langs=en,zh,de")
    assert est.steps == 7


def test_sft_keeps_the_last_smaller_step():
    est = planned("sft", "plan.gpu=rtx4090-24gb")
    # 1,000 examples in micro-batches of 8: 125; / grad_accum 8 -> 16 steps per epoch (the last of 5); 3 epochs
    assert (est.steps, est.rollouts, est.generated_tokens) == (48, 0, 0)
    assert est.trained_tokens == 3 * 1000 * (200 + 400)
    est = planned("sft", "plan.gpu=rtx4090-24gb", "train.max_steps=20")
    assert est.trained_tokens == (1000 + 4 * 64) * 600  # one epoch, then 4 steps of 64
    # RFT: 8 samples for each problem, then SFT on rft.keep answers per problem (an upper bound)
    est = planned("rft", "plan.gpu=rtx4090-24gb")
    assert (est.steps, est.rollouts, est.generated_tokens) == (48, 8000, 8000 * 700)
    assert any("an upper bound" in a for a in est.assumptions)


def test_memory_terms_by_backend():
    # plain TRL + PEFT: its own weights beside vLLM's, checkpointed activations, and the logits of a micro-batch
    est = planned("grpo-en", "plan.gpu=rtx4090-24gb", "train.backend=peft")
    stored = 8 * 4296 * 1536 * 2 * 28 / GIB
    layer = 8 * 4296 * (7 * 1536 + 4 * 8960) * 2 / GIB
    assert est.memory == {"vLLM share": round(0.5 * 23.6, 2), "weights": round(N_15B * 2 / GIB, 2),
                          "LoRA + Adam": 0.55, "activations": round(stored + layer, 2),
                          "logits": round(8 * 4096 * 151936 * 2 / GIB, 2), "CUDA context": 1.0}
    assert not est.fits and est.problems[0] == "estimated peak 31.2 GiB exceeds its 23.6 GiB"
    assert planned("grpo-en", "plan.gpu=rtx4090-24gb", "train.backend=peft", "train.batch_size=2").fits
    # QLoRA: 4-bit projections, 16-bit embeddings
    shape = model_shape("Qwen/Qwen2.5-3B-Instruct").arch
    est = planned("grpo-en", "plan.gpu=rtx4090-24gb", "model.name=Qwen/Qwen2.5-3B-Instruct", "lora.qlora=true",
                  "train.batch_size=4", "vllm.gpu_memory_utilization=0.5")
    nf4 = (shape.linear_params() * 0.516 + (shape.params() - shape.linear_params()) * 2) / GIB
    assert any(f"weights {nf4:.1f} (shared with training)" in a for a in est.assumptions) and est.fits
    # full-parameter: 16 B per parameter (fp32 weight, gradient, Adam), sharded over the GPUs
    est = planned("grpo-en", "plan.gpu=h100-80gb", "train.backend=full", "plan.gpus=8", "train.batch_size=2")
    assert est.memory["weights + gradients + Adam (fp32)"] == round(N_15B * 16 / GIB / 8, 2)
    assert est.gpus == 8 and est.gpu_hours == pytest.approx(est.hours * 8)
    # no gradient checkpointing: every layer's activations
    est = planned("sft", "plan.gpu=h100-80gb", "train.gradient_checkpointing=false", "train.backend=peft")
    assert est.memory["activations"] == round(8 * 1200 * (7 * 1536 + 4 * 8960) * 2 * 28 / GIB, 2)


def test_vllm_must_hold_one_sequence():
    est = planned("grpo-en", "plan.gpu=t4-16gb", "model.name=Qwen/Qwen2.5-7B-Instruct", "vllm.gpu_memory_utilization=0.5")
    assert not est.fits and any("does not hold the weights" in p for p in est.problems)
    est = planned("grpo-en", "plan.gpu=rtx4090-24gb", "vllm.gpu_memory_utilization=0.165")
    assert any("fewer than one sequence of 5,120 (vLLM refuses to start)" in p for p in est.problems)


def test_model_shapes():
    assert model_shape("Qwen/Qwen2.5-1.5B-Instruct").arch.params() == N_15B
    assert model_shape("Qwen/Qwen2.5-1.5B-Instruct").arch.lora_params(32, hardware.PROJECTIONS) == (LORA_15B_R32, [])
    assert model_shape("meta-llama/Llama-3.2-1B-Instruct").arch.params() == 1_235_814_400
    assert model_shape("Qwen/Qwen2.5-Math-7B").arch.params() == 7_615_616_512
    assert model_shape("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B").arch.params() == 1_777_088_000
    unbuilt = model_shape("runs/study/models/tiny-base")  # a sweep builds it before training
    assert unbuilt.arch == model_shape("tiny").arch and unbuilt.random and not unbuilt.exact
    guess = model_shape("someone/my-model-3b")
    assert not guess.exact and "shaped like qwen2.5-3b (its name says 3B)" in guess.source
    est = planned("grpo-en", "plan.gpu=t4-16gb", "model.name=someone/my-model-7b")
    assert not est.fits and not est.exact  # reported, but a run is never refused on a guessed shape


def test_shapes_match_the_real_tiny_model_and_peft(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    arch = model_shape(str(tiny_model)).arch  # from its config.json
    assert arch.params() == model_shape("tiny").arch.params()
    assert arch.params() == sum(p.numel() for p in model.parameters())
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=list(hardware.PROJECTIONS)))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert arch.lora_params(8, hardware.PROJECTIONS)[0] == trainable
    assert arch.kv_bytes_per_token(4) == 2 * 2 * 2 * 16 * 4  # K and V, 2 layers, 2 KV heads of 16, fp32


def test_gpu_names_detected_and_unknown():
    assert match_gpu("NVIDIA H100 80GB HBM3", 79.1, (9, 0)).key == "h100-80gb"
    assert match_gpu("NVIDIA A100-SXM4-40GB", 39.4, (8, 0)).key == "a100-40gb"
    assert match_gpu("NVIDIA A100 80GB PCIe", 79.2, (8, 0)).key == "a100-80gb"
    t4 = match_gpu("Tesla T4", 14.6, (7, 5))
    assert t4.key == "t4-16gb" and not t4.bf16 and t4.assumption is None
    other = match_gpu("NVIDIA GeForce RTX 5090", 31.4, (12, 0))
    assert other.key == "v100-32gb" and other.memory_gib == 31.4 and other.bf16
    assert other.assumption.startswith("GPU 'NVIDIA GeForce RTX 5090' (31.4 GiB) is not in the planner's table: its "
                                       "speed is assumed to be that of v100-32gb, the nearest in memory")
    est = estimate_training(cli.resolve("grpo-en", [])[0], other)
    assert est.assumptions[0] == other.assumption


@pytest.mark.parametrize("args,message", [
    (["plan.gpu=h100"], "recipe key 'plan.gpu': unknown GPU 'h100' (did you mean 'h100-80gb'?); known: h200-141gb, "
                        "h100-80gb, a100-80gb"),
    (["plan.gpus=0"], "recipe key 'plan.gpus': must be at least 1"),
    (["plan.train_tflops=-3"], "recipe key 'plan.train_tflops': must be a positive number of TFLOP/s"),
    (["plan.gpus=3"], "recipe key 'train.batch_size' with 3 GPU(s): a step holds"),
])
def test_bad_plan_keys_are_one_line_errors(capsys, monkeypatch, tmp_path, args, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["grpo-en", *args, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_dry_run_prints_the_plan_as_yaml_comments(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["grpo-en", "plan.gpu=a100-80gb", "--dry-run"]) == 0
    out = capsys.readouterr().out
    resolved = yaml.safe_load(out)  # still the resolved recipe
    assert resolved["plan"]["gpu"] == "a100-80gb" and resolved["plan"]["memory_check"] is True
    comments = [line for line in out.splitlines() if line.startswith("#")]
    assert comments[0].startswith("# plan of GRPO Qwen/Qwen2.5-1.5B-Instruct, unsloth LoRA r=32, vLLM 0.5, batch 8, "
                                  "on a100-80gb (NVIDIA A100-SXM4-80GB, 79.3 GiB, bf16): 7 steps, 14,336 rollouts, "
                                  "~10.0M tokens generated, ~12.9M trained, ~")
    hours = planned("grpo-en", "plan.gpu=a100-80gb").gpu_hours
    assert comments[0].endswith(f"~{hours:.2f} GPU-hours, peak VRAM ~44.2 of 79.3 GiB (fits)")
    assert comments[1] == "#   estimates, not measurements (the assumptions are listed below)"
    assert "#   peak VRAM (GiB): vLLM share 39.6, LoRA + Adam 0.55, activations 3.0, CUDA context 1.0" in comments
    assert any(c.startswith("#   time per step ~") for c in comments) and "#   assumptions:" in comments
    assert not list(tmp_path.iterdir())


def test_a_run_that_cannot_fit_is_refused_before_loading(capsys, monkeypatch, tmp_path):
    from xling.train import backends

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(backends, "cuda_available", lambda: True)
    monkeypatch.setattr(backends, "bf16_supported", lambda: True)
    monkeypatch.setattr(plan, "detect_gpu", lambda: GPUS["rtx4090-24gb"])

    def loaded(*a, **k):
        raise AssertionError("the run went on to load")

    monkeypatch.setattr(backends, "startup_check", loaded)
    monkeypatch.setattr(backends, "load", loaded)
    model = tmp_path / "qwen-1.5b"  # a local model folder: its config.json is all the planner reads
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "model_type": "qwen2", "hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12,
        "num_key_value_heads": 2, "intermediate_size": 8960, "vocab_size": 151936, "tie_word_embeddings": True}))
    rc = cli.main(["grpo-en", f"model.name={model}", "train.backend=peft", "vllm.enabled=false",
                   "train.questions_per_step=16", "data.source=synth", "out=run"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: this run does not fit rtx4090-24gb: estimated peak 33.8 GiB exceeds its 23.6 GiB "
                          "(estimate, GiB: weights 2.9, LoRA + Adam 0.55, generation KV cache 29.4, CUDA context 1.0); "
                          "lower train.batch_size or grpo.max_completion_length; or set lora.qlora=true; "
                          "or plan.memory_check=false to try anyway")
    assert not (tmp_path / "run" / "trainset.jsonl").exists() and not (tmp_path / "run" / "metrics.json").exists()


def test_cpu_warning_names_the_keys_that_shrink_it(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_device", lambda: CPU)
    resolved = SimpleNamespace(backend="peft", use_vllm=False, processes=1, cuda=False)
    cfg, _ = cli.resolve("grpo-en", ["model.name=tiny", "data.source=synth"])
    lines = preflight(cfg, resolved)
    # 14,336 rollouts of 1,024 x (1 - e^-4) = 1,005 tokens at 1 ms + 2N/30 GFLOP/s each, plus 8N per trained token
    # (forward, backward, recompute, reference log-probs)
    n = 139_840
    seconds = 14_336 * 1005 * (1e-3 + 2 * n / 30e9) + 8 * n * 7 * 2048 * 1205 / 30e9
    assert lines[0].startswith("plan (estimate): 7 steps, 14,336 rollouts, ~14.4M tokens generated")
    assert lines[1] == (f"note: on this CPU the run is estimated at ~{seconds / 3600:.2f} hours (7 steps, "
                        f"~{seconds / 7 / 60:.1f} min per step); these recipe sizes are meant for a GPU. Keys that "
                        "shrink it: train.max_steps, grpo.num_generations, grpo.max_completion_length, data.n, "
                        "train.questions_per_step (e.g. train.max_steps=2 train.questions_per_step=2 "
                        "grpo.num_generations=4 grpo.max_completion_length=64 train.batch_size=4)")
    assert "~4.22 hours" in lines[1]
    assert len(preflight(cfg, resolved, done_steps=6)) == 1  # one step left: under an hour
    small, _ = cli.resolve("grpo-en", ["model.name=tiny", "data.source=synth", *plan.SHRINK_EXAMPLE["grpo"].split()])
    assert len(preflight(small, resolved)) == 1


def test_totals_of_a_sweep():
    ests = [planned("grpo-parallel", f"data.k={k}", "plan.gpu=h100-80gb") for k in range(3)]
    total = Estimate.total(ests)
    assert total.steps == 7 + 15 + 23 and total.rollouts == sum(e.rollouts for e in ests)
    assert total.gpu_hours == pytest.approx(sum(e.gpu_hours for e in ests))
    assert total.peak_vram_gib == max(e.peak_vram_gib for e in ests) and total.fits and total.gpu == "h100-80gb"
    ests.append(planned("grpo-en", "plan.gpu=rtx4090-24gb", "train.backend=peft"))
    total = Estimate.total(ests)
    assert not total.fits and total.gpu == "mixed" and total.problems
    assert total.as_dict()["gpu_hours"] == total.gpu_hours and total.lines()[0].startswith("plan of 4 run(s), on ")


def test_evaluation():
    est = estimate_evaluation(250 * 11, 1, 8192, "Qwen/Qwen2.5-1.5B-Instruct", "h100-80gb")
    assert (est.rollouts, est.generated_tokens, est.trained_tokens) == (2750, 2750 * 700, 0)
    assert est.hours == pytest.approx(2750 * 700 / (32 * 3.35e12 / (2 * N_15B)) / 3600, rel=1e-12)
    assert est.fits and est.memory == {"vLLM share": round(0.9 * 79.2, 2), "CUDA context": 1.0}
    assert estimate_evaluation(30, 16, 32768, "Qwen/Qwen2.5-14B-Instruct", "a100-40gb").fits
    big = estimate_evaluation(30, 16, 32768, "Qwen/Qwen2.5-14B-Instruct", "a100-40gb", gpu_memory_utilization=0.8)
    assert big.problems == ["vLLM's share (0.8 x 39.4 GiB) does not hold the weights (27.5 GiB) and one "
                            "32,968-token sequence"] and not big.fits
    with pytest.raises(XlingError, match="an evaluation plan needs"):
        estimate_evaluation(10, 0, 100, "tiny", "cpu")


def test_first_step_time_is_printed_as_soon_as_it_ends(capsys, monkeypatch, tmp_path):
    from xling.train import callbacks

    clock = iter([100.0, 142.5])
    monkeypatch.setattr(callbacks, "clock", lambda: next(clock))
    progress = callbacks.callbacks(tmp_path / "log.jsonl")[1]
    state = SimpleNamespace(is_world_process_zero=True, max_steps=7, global_step=0)
    progress.on_train_begin(None, state, None)
    state.global_step = 1
    progress.on_step_end(None, state, None)
    out = capsys.readouterr().out
    assert "training 7 step(s); a step generates and scores its rollouts, then trains on them" in out
    assert "step 1 took 42.5 s; the other 6 take about 4.2 min at that rate" in out
    assert progress.timing == "42.5 s/step"
    progress.close()


def test_plan_keys_may_change_in_a_run_folder(tmp_path):
    cfg, _ = cli.resolve("grpo-en", ["data.source=synth"])
    folder.prepare_run_dir(cfg, tmp_path, False, registry.load_task(cfg.task).RESUMABLE)
    (tmp_path / "trainset.jsonl").write_text("{}\n")  # work in progress
    again, _ = cli.resolve("grpo-en", ["data.source=synth", "plan.gpu=l4-24gb"])
    assert folder.prepare_run_dir(again, tmp_path, False, registry.load_task(cfg.task).RESUMABLE)
    assert folder.default_out(Path("recipes/grpo-en.yaml"), ["plan.gpu=l4-24gb"],
                           registry.load_task(cfg.task).RESUMABLE) == Path("runs/grpo-en")


def test_readme_table_is_the_planners():
    assert "\n".join(plan.readme_table()) in (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.skipif(not sys.platform.startswith("linux") or Path("/dev/nvidiactl").exists(),
                    reason="the shortcut is for Linux machines without a GPU driver")
def test_detecting_no_gpu_imports_no_torch():
    code = "import sys; from xling.planning.hardware import detect_gpu; d = detect_gpu(); print(d.key, 'torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["cpu", "False"]


@pytest.mark.slow
def test_planned_steps_are_trls(tiny_model, tmp_path):
    """The planner's step counts against real TRL runs: GRPO drops the incomplete step, SFT keeps it."""
    from xling.tasks import train_grpo, train_sft
    from xling.train import grpo, sft
    from helpers import with_overrides

    common = {"model": {"name": str(tiny_model)}, "data": {"source": "synth", "n": 3, "langs": ["en"]},
              "lora": {"r": 8, "alpha": 16, "targets": ["q_proj", "v_proj"]}}
    over = {"train.backend": "peft", "train.epochs": 1.0, "train.questions_per_step": 2, "train.batch_size": 2,
            "train.gradient_checkpointing": False, "train.save_steps": 100, "grpo.num_generations": 2,
            "grpo.num_iterations": 2, "grpo.max_completion_length": 8, "grpo.max_prompt_length": 512,
            "rewards.workers": 0, "rewards.min_chars": 1}
    cfg = with_overrides(train_grpo.Config, {"task": "train-grpo", **common}, over)
    est = estimate_training(cfg, "cpu")
    assert est.steps == 2  # 3 prompts // 2 = 1 full step (one prompt waits), its generation used twice
    assert grpo.run(cfg, tmp_path / "grpo")["steps"] == est.steps
    over = {"train.backend": "peft", "train.epochs": 1.0, "train.questions_per_step": 2, "train.batch_size": 1,
            "train.gradient_checkpointing": False, "train.save_steps": 100}
    cfg = with_overrides(train_sft.Config, {"task": "train-sft", **common}, over)
    est = estimate_training(cfg, "cpu")
    assert est.steps == 2  # 3 micro-batches of 1, 2 per step: the last step holds one
    assert sft.run(cfg, tmp_path / "sft")["steps"] == est.steps
