"""The mechanism probes where the answer is known: self-BLEU, perplexity, hidden-state drift, and the task."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xling.evaluation import probes as PR


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XLING_CACHE", str(tmp_path / "cache"))


# -- self-BLEU ------------------------------------------------------------------------------------

def test_identical_samples_have_self_bleu_100_in_every_script():
    assert PR.self_bleu(["Grace has 35 balls now."] * 4) == 100.0
    assert PR.self_bleu(["请始终用中文思考。"] * 2, "zh") == 100.0
    assert PR.self_bleu(["กรุณาคิดเป็นภาษาไทยเสมอ"] * 3, "th") == 100.0
    assert PR.self_bleu(["only one"]) is None


def test_self_bleu_by_hand():
    # "a b c d" against "a b c d e": every n-gram matches, brevity penalty exp(1 - 5/4);
    # "a b c d e" against "a b c d": precisions 4/5, 3/4, 2/3, 1/2 (geometric mean 0.2^(1/4)), no penalty.
    expected = (100 * math.exp(-0.25) + 100 * 0.2 ** 0.25) / 2
    assert PR.self_bleu(["a b c d", "a b c d e"]) == pytest.approx(expected, abs=1e-5)
    assert PR.self_bleu(["one two three four", "five six seven eight"]) == 0.0
    assert PR.bleu_tokenize("zh") == "zh" and PR.bleu_tokenize("ja") == "char" and PR.bleu_tokenize("bn") == "13a"


# -- perplexity -----------------------------------------------------------------------------------

def test_corpus_perplexity_is_exp_of_the_mean_token_nll():
    assert PR.corpus_perplexity([(3 * math.log(4), 3)]) == pytest.approx(4.0)
    assert PR.corpus_perplexity([(math.log(2), 1), (3 * math.log(8), 3)]) == pytest.approx(2 ** 2.5)
    assert PR.corpus_perplexity([]) is None and PR.corpus_perplexity([(0.0, 0)]) is None


def test_a_model_with_zero_weights_has_the_vocabulary_size_as_perplexity(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    net = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()  # every logit 0: the uniform distribution over the vocabulary
    texts = ["Grace has 23 balls.", "Bitte denken Sie immer auf Deutsch.", "请始终用中文思考。"]
    nll = PR.token_nll(net, tok, texts, batch_size=2)
    assert [n for _, n in nll] == [len(tok(t)["input_ids"]) - 1 for t in texts]  # no BOS: the first token is given
    assert PR.corpus_perplexity(nll) == pytest.approx(net.config.vocab_size, rel=1e-5)


def test_a_model_with_known_token_probabilities_has_the_known_perplexity(tiny_model):
    """Every position's next-token distribution is the same chosen q: the residual stream is one
    constant vector (all token embeddings equal, every layer's output projections zero), the final
    norm passes it unchanged, and the LM head maps it to logits log q."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model)
    vocab, hidden = len(tok), 8
    config = Qwen2Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False, rms_norm_eps=0.0)
    net = Qwen2ForCausalLM(config).eval()
    q = torch.softmax(torch.randn(vocab, generator=torch.Generator().manual_seed(0)), dim=0).double()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.model.embed_tokens.weight.fill_(1.0)
        net.model.norm.weight.fill_(1.0)
        net.lm_head.weight.copy_((q.log() / hidden).float().unsqueeze(1).expand(vocab, hidden))
    texts = ["What is 3 + 4?", "Bitte denken Sie immer auf Deutsch."]
    nll = PR.token_nll(net, tok, texts)
    ids = [tok(t)["input_ids"] for t in texts]
    expected = math.exp(-sum(float(q[i].log()) for x in ids for i in x[1:]) / sum(len(x) - 1 for x in ids))
    assert PR.corpus_perplexity(nll) == pytest.approx(expected, rel=1e-4)


# -- hidden states, drift, PCA --------------------------------------------------------------------

def test_identical_models_do_not_drift_and_batching_changes_nothing(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    first = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    second = AutoModelForCausalLM.from_pretrained(tiny_model).eval()  # loaded again: the same weights
    texts = ["What is 3 + 4?", "Bitte denken Sie immer auf Deutsch, Schritt für Schritt.", "请始终用中文思考。"]
    for pool in ("mean", "last"):
        a = PR.hidden_states(first, tok, texts, pool=pool, batch_size=3)
        b = PR.hidden_states(second, tok, texts, pool=pool, batch_size=1)
        assert a.shape == (3, first.config.hidden_size)
        np.testing.assert_allclose(a, b, atol=1e-5)  # padding in a batch does not change a text's states
        d = PR.drift(PR.hidden_states(second, tok, texts, pool=pool, batch_size=3), a)
        assert np.abs(d).max() == 0.0
        proj, comps, ratios = PR.pca(d, center=False)
        assert not proj.any() and ratios == [None, None]
        summary = PR.drift_summary(d, a, proj, english_mean=d.mean(axis=0))
        assert summary["norm"] == 0.0 and summary["relative"] == 0.0 and summary["cos_with_en"] is None
    single = PR.token_nll(first, tok, texts[1:2])
    batched = PR.token_nll(first, tok, texts, batch_size=3)
    assert batched[1][1] == single[0][1] and batched[1][0] == pytest.approx(single[0][0], rel=1e-5)


def test_pca_by_hand():
    x = np.array([[1.0, 0.0], [2.0, 0.0], [-3.0, 0.0]])
    proj, comps, ratios = PR.pca(x, center=False)
    np.testing.assert_allclose(comps[0], [1.0, 0.0])
    np.testing.assert_allclose(proj[:, 0], [1.0, 2.0, -3.0])
    assert ratios[0] == pytest.approx(1.0) and ratios[1] == pytest.approx(0.0)
    y = np.array([[1.0, 1.0], [3.0, 3.0]])  # centered: one direction, (1, 1)/√2, coordinates ∓√2
    proj, comps, ratios = PR.pca(y)
    np.testing.assert_allclose(comps[0], [2 ** -0.5, 2 ** -0.5])
    np.testing.assert_allclose(proj[:, 0], [-2 ** 0.5, 2 ** 0.5])
    assert ratios == [pytest.approx(1.0), pytest.approx(0.0)]
    d = np.array([[3.0, 4.0], [6.0, 8.0]])
    s = PR.drift_summary(d, np.array([[0.0, 5.0], [0.0, 10.0]]), PR.pca(d, center=False)[0], np.array([-3.0, -4.0]))
    assert s["norm"] == pytest.approx(7.5) and s["relative"] == pytest.approx(1.0) and s["cos_with_en"] == -1.0


def test_bootstrap_intervals():
    assert PR.mean_ci([2.0, 2.0, 2.0]) == [2.0, 2.0]
    lo, hi = PR.mean_ci(list(range(10)), n_boot=500, seed=1)
    assert lo < 4.5 < hi
    assert PR.mean_ci([1.0]) is None
    assert PR.perplexity_ci([(math.log(4), 1)] * 5) == [pytest.approx(4.0), pytest.approx(4.0)]


# -- the task -------------------------------------------------------------------------------------

@pytest.fixture
def probe(tiny_model, tiny_base_model, tmp_path):
    """Recipe keys of a CPU run: the tiny model as base, compared with another random model and with a LoRA
    adapter on it whose B matrices are zero (PEFT's initialisation: the adapter changes nothing)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                          LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path / "zero-lora")
    models = f"models=[{{name: other, model: {tiny_base_model}}}, {{name: same, adapter: {tmp_path / 'zero-lora'}}}]"
    return [f"base={tiny_model}", models, "template_from=chatml", "benchmark=synth", "langs=en,de", "limit=2",
            "samples=2", "gen.max_tokens=6", "n_boot=50"]


@pytest.mark.slow
def test_probes_task_on_cpu(run_cli, tmp_path, probe):
    PROBE = probe
    assert run_cli("probes", *PROBE, "out=probes") == 0
    run = tmp_path / "probes"
    m = json.loads((run / "metrics.json").read_text())
    assert list(m["models"]) == ["base", "other", "same"] and m["langs"] == ["en", "de"] and m["problems"] == 2
    for lang in ("en", "de"):
        assert m["drift"]["same"][lang]["norm"] == 0.0 and m["drift"]["same"][lang]["pc1"] == 0.0
        assert m["drift"]["other"][lang]["norm"] > 0
        assert m["perplexity"]["same"][lang]["value"] == m["perplexity"]["base"][lang]["value"]
        assert m["perplexity"]["base"][lang]["value"] > 1 and m["perplexity"]["base"][lang]["tokens"] > 0
        assert 0 <= m["self_bleu"]["other"][lang]["value"] <= 100 and m["self_bleu"]["other"][lang]["n"] == 2
    assert m["self_bleu"]["same"] == m["self_bleu"]["base"]  # the same distribution, the same per-sample seeds
    assert m["pca"]["explained"][0] > 0
    for name in ("perplexity", "self_bleu", "drift_norm", "drift_pca"):
        assert (run / "figures" / f"{name}.png").stat().st_size > 1000
    report = (run / "report.md").read_text()
    assert "## Drift of final-layer hidden states" in report and "figures/drift_pca.png" in report
    assert m["models"]["same"]["adapter"].endswith("zero-lora")
    units = sorted((run / "probes").rglob("*.npy"))
    assert len(units) == 6  # three models x two languages, each computed on its own
    before = {p: p.stat().st_mtime_ns for p in units}
    assert run_cli("probes", *PROBE, "out=probes", "plots=false", "--force") == 0  # a re-run recomputes nothing
    assert {p: p.stat().st_mtime_ns for p in units} == before
    again = json.loads((run / "metrics.json").read_text())
    assert again["drift"] == m["drift"] and again["perplexity"] == m["perplexity"]
    # other problems: each unit's record names other ids, so its states are computed again, never reused
    assert run_cli("probes", *PROBE[:-4], "limit=1", *PROBE[-3:], "out=probes", "plots=false", "--force") == 0
    one = json.loads((run / "metrics.json").read_text())
    assert one["problems"] == 1 and all(c["n"] == 1 for per in one["perplexity"].values() for c in per.values())
    now = sorted((run / "probes").rglob("*.npy"))
    assert len(now) == 6 and not set(now) & set(units)  # the states of the two problems are gone
    stores = sorted((run / "probes").rglob("passes.jsonl"))
    assert len(stores) == 3 and all(len(json.loads(line)["ids"]) == 1
                                    for f in stores for line in f.read_text().splitlines()[-2:])


def test_probes_bad_input(run_cli, capsys):
    PROBE = ["base=tiny", "models=[{name: other, model: tiny-base}]", "benchmark=synth"]
    assert run_cli("probes", "base=tiny", "models=[]", "--dry-run") == 2
    assert "models" in capsys.readouterr().err
    assert run_cli("probes", *PROBE, "samples=1", "--dry-run") == 2
    assert "self-BLEU compares samples with each other: at least 2" in capsys.readouterr().err
    assert run_cli("probes", *PROBE, "langs=en,xx", "--dry-run") == 2
    assert "xx" in capsys.readouterr().err
    assert run_cli("probes", *PROBE, "models=[{name: base, model: tiny-base}]", "--dry-run") == 2
    assert "own name" in capsys.readouterr().err
