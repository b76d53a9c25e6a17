"""Real-hardware checks of evaluation (CUDA + vllm + the GPU lock set; skipped elsewhere).

Run on a GPU host: python -m pytest -q tests/test_gpu_eval.py (models from the hub, or set
XLING_GPU_MODEL to a local folder)."""

import json
import os

import pytest

from xling.runs import cli

pytestmark = pytest.mark.gpu
MODEL = os.environ.get("XLING_GPU_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")


def test_vllm_generates_with_prefix_and_adapter(tmp_path, tiny_model):
    pytest.importorskip("vllm")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from xling.generate import load_generator
    from xling.data.prompts import build_messages

    net = AutoModelForCausalLM.from_pretrained(MODEL)
    adapter = tmp_path / "adapter"
    get_peft_model(net, LoraConfig(r=24, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    gen = load_generator("vllm", MODEL, adapter=str(adapter), gpu_memory_utilization=0.5, max_model_len=4096)
    assert gen.max_lora_rank == 32
    convs = [build_messages({"lang": l, "question": "2 + 3 = ?"}, prefix=True) for l in ("en", "de", "ja")]
    out = gen.chat(convs, n=2, temperature=0.6, top_p=0.95, max_tokens=64, seed=0)
    assert [len(o) for o in out] == [2, 2, 2]
    assert all(s.finish_reason in ("stop", "length") and 0 < s.tokens <= 64 for o in out for s in o)
    gen.close()


def test_vllm_and_hf_render_the_same_prompt():
    from xling.generate.hf import load_tokenizer
    from xling.data.prompts import build_messages, render

    tok = load_tokenizer(MODEL)
    msgs = build_messages({"lang": "de", "question": "2 + 3 = ?"}, prefix=True)
    text = render(msgs, tok)
    assert text.endswith("Auf Anfrage werde ich anfangen, in Deutsch zu denken.")


def test_evaluate_mgsm_on_gpu(tmp_path, monkeypatch, shared_data):
    pytest.importorskip("vllm")
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["evaluate", f"model={MODEL}", "benchmarks=mgsm", f"data.mgsm={shared_data / 'mgsm'}", "limit=20",
                   "gen.backend=vllm", "gen.max_tokens=1024", "gen.gpu_memory_utilization=0.5", "n_boot=100", "out=o"])
    assert rc == 0
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["backend"] == "vllm" and m["accuracy"]
    assert m["mean_accuracy"][next(iter(m["models"]))] > 5  # a real instruct model solves some MGSM problems
