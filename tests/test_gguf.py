"""GGUF checkpoints: a small GGUF file written here (with the `gguf` package) loads through
transformers' GGUF support (`xling.models.gguf`), gives the logits of the model it was written from, and is
accepted wherever a model is (training `model.name`, evaluate `model`/`base`)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xling.models import gguf as G
from xling.common.errors import XlingError

TEXT = "James has 23 oranges. How many oranges does James have now? The answer is \\boxed{25}."


def tiny_llama(seed: int = 0):
    """A random Llama model (64 wide, 2 layers, tied embeddings) with the tiny byte-level BPE tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from xling.models.tiny import build_tokenizer

    tokenizer = build_tokenizer(chat_template=True, vocab_size=512)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval(), tokenizer


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for q/k (rotary halves interleaved), which transformers' loader undoes."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, tokenizer, path: Path, qtype: str = "F32") -> Path:
    """Write `model` and `tokenizer` as a llama GGUF file: metadata, a GPT-2 style BPE vocabulary,
    and the weights (F32, or Q8_0 for the 2-D ones)."""
    import gguf

    c = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(c.vocab_size)
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = [tokenizer.convert_ids_to_tokens(i) for i in range(len(tokenizer))]
    special = set(tokenizer.all_special_ids) | {t["id"] for t in backend["added_tokens"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in backend["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3 if i in special else 1 for i in range(len(tokens))])
    w.add_token_merges(merges)
    w.add_bos_token_id(tokenizer.pad_token_id)  # llama.cpp always writes one; transformers' reader needs it
    w.add_eos_token_id(tokenizer.eos_token_id)
    w.add_pad_token_id(tokenizer.pad_token_id)
    w.add_chat_template(tokenizer.chat_template)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}

    def add(name: str, t: torch.Tensor) -> None:
        data = t.detach().float().numpy()
        if qtype == "Q8_0" and data.ndim == 2:
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, data)

    add("token_embd.weight", model.model.embed_tokens.weight)
    for i, layer in enumerate(model.model.layers):
        for hf, g in names.items():
            t = layer.get_submodule(hf).weight
            if g == "attn_q":
                t = torch.from_numpy(_permute(t.detach().numpy(), c.num_attention_heads))
            elif g == "attn_k":
                t = torch.from_numpy(_permute(t.detach().numpy(), c.num_key_value_heads))
            add(f"blk.{i}.{g}.weight", t)
    add("output_norm.weight", model.model.norm.weight)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    model, tokenizer = tiny_llama()
    folder = tmp_path_factory.mktemp("gguf-model")
    return model, tokenizer, write_gguf(model, tokenizer, folder / "tiny-llama.F32.gguf")


def _logits(model, tokenizer) -> torch.Tensor:
    ids = tokenizer(TEXT, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        return model(input_ids=ids).logits


def test_loads_the_model_and_tokenizer_it_was_written_from(written):
    model, tokenizer, file = written
    loaded, tok = G.load(file)
    assert type(loaded).__name__ == "LlamaForCausalLM"
    assert loaded.config.num_hidden_layers == 2 and loaded.config.tie_word_embeddings
    assert tok(TEXT, add_special_tokens=False)["input_ids"] == tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert tok.chat_template == tokenizer.chat_template
    assert tok.eos_token == "<|im_end|>"
    torch.testing.assert_close(_logits(loaded, tok), _logits(model, tokenizer), rtol=1e-4, atol=1e-4)


def test_a_quantized_file_is_dequantized(written, tmp_path):
    model, tokenizer, _ = written
    file = write_gguf(model, tokenizer, tmp_path / "tiny-llama.Q8_0.gguf", qtype="Q8_0")
    assert file.stat().st_size < written[2].stat().st_size / 2
    loaded, tok = G.load(file)
    got, want = _logits(loaded, tok), _logits(model, tokenizer)
    assert not torch.equal(got, want)  # 8-bit blocks, not the float weights
    torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)


def test_which_names_are_gguf_models(written, tmp_path):
    _, _, file = written
    assert G.gguf_file(str(file)) == file
    assert G.gguf_file(str(file.parent)) == file  # a folder with one .gguf file and no config.json
    assert G.gguf_file("Qwen/Qwen2.5-1.5B-Instruct") is None
    assert G.gguf_file(str(tmp_path)) is None  # an empty folder
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    assert G.gguf_file(str(tmp_path)) is None  # a checkpoint folder, whatever else it holds
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.gguf").write_bytes(b"GGUF")
    (two / "b.gguf").write_bytes(b"GGUF")
    with pytest.raises(XlingError, match=r"holds 2 GGUF files \(a.gguf, b.gguf\); give the path of the one to load"):
        G.gguf_file(str(two))


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(XlingError, match=r"transformers cannot load .*broken.gguf as a causal LM \(ValueError: "
                                         r".*GGUF magic bytes"):
        G.load(bad)


def test_without_the_gguf_package_the_error_says_what_to_install(written, monkeypatch):
    monkeypatch.setattr(G, "_has_gguf_reader", lambda: False)
    with pytest.raises(XlingError, match=r"needs the gguf package: pip install gguf==0.19.0"):
        G.load(written[2])


def test_converted_once_into_the_cache_and_accepted_wherever_a_model_is(written, tmp_path, monkeypatch):
    from xling.generate.hf import HFGenerator
    from xling.data.prompts import build_messages
    from xling.evaluation.models import materialize
    from xling.train.lifecycle import model_path

    model, tokenizer, file = written
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))
    folder = Path(G.resolve(str(file.parent)))
    assert folder.parent == tmp_path / "cache" / "gguf" and folder.name.startswith("tiny-llama.F32-")
    assert (folder / "config.json").is_file() and (folder / "xling_gguf.json").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left

    def no_second_conversion(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(G, "convert", no_second_conversion)
    assert G.resolve(str(file)) == str(folder)
    assert materialize(str(file)) == str(folder)  # evaluate model= / base=
    cfg = SimpleNamespace(model=SimpleNamespace(name=str(file), template_from=None), seed=0)
    assert model_path(cfg, tmp_path / "run") == str(folder.resolve())  # training model.name=
    assert G.resolve("Qwen/Qwen2.5-1.5B-Instruct") == "Qwen/Qwen2.5-1.5B-Instruct"

    gen = HFGenerator(str(folder), batch_size=2)  # the converted folder generates like any checkpoint
    out = gen.chat([build_messages({"question": "2 + 3?", "lang": "en"})], n=1, temperature=0.6, top_p=0.95,
                   max_tokens=5, seed=0)
    assert len(out[0]) == 1 and out[0][0].tokens <= 5
    torch.testing.assert_close(_logits(gen.net, gen.tokenizer), _logits(model, tokenizer), rtol=1e-4, atol=1e-4)


def test_the_planner_reads_the_shape_from_the_gguf_metadata(written, tmp_path):
    from xling.planning.hardware import model_shape

    model, _, path = written
    c = model.config
    for name in (path, path.parent):
        shape = model_shape(str(name))
        assert shape.exact and shape.source == f"the metadata of {path.name}"
        a = shape.arch
        assert (a.hidden, a.layers, a.heads, a.kv_heads, a.intermediate, a.vocab, a.tied) == (
            c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size,
            c.vocab_size, True)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    assert not model_shape(str(broken)).exact  # guessed, as for any name it cannot read
