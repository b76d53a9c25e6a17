"""The toy world of the classroom demo (xling.models.toy): the pretraining mixture, the held-apart
problems, the tokenizer, the cache, and `toy` as a model name."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest

from xling.data import synth
from xling.models import toy
from xling.common.config import Invalid
from xling.data import load
from xling.common.errors import XlingError
from xling.data.languages import CODES

# A toy small enough to pretrain in a few seconds (it answers nothing; the real one is ToyConfig()).
SMALL = dict(examples=48, vocab_size=400, hidden_size=32, layers=1, heads=2, kv_heads=1, intermediate_size=64,
             batch_size=16, epochs=1)


def test_mixture_counts_are_the_shares_rounded_exactly():
    assert toy.mixture_counts(1000, toy.MIXTURE) == {
        "en": 720, "es": 40, "ru": 40, "de": 40, "fr": 40, "bn": 10, "th": 10, "sw": 10, "zh": 40, "ja": 40, "te": 10}
    # largest remainder: 7 examples over shares 1:1:1 give 3, 2, 2 (ties go to the table's order)
    assert toy.mixture_counts(7, {"de": 1, "en": 1, "es": 1}) == {"en": 3, "es": 2, "de": 2}
    assert toy.mixture_counts(10, {"en": 3, "te": 0}) == {"en": 10}
    counts = toy.mixture_counts(16000, toy.MIXTURE)
    assert sum(counts.values()) == 16000
    assert counts["en"] > max(counts[c] for c in ("es", "fr", "de", "ru", "zh", "ja")) > counts["bn"] > 0


def test_the_corpus_follows_the_mixture_and_never_repeats_a_problem():
    cfg = toy.ToyConfig(examples=500, prefix_share=0.25)
    examples = toy.corpus(cfg)
    assert Counter(e.lang for e in examples) == Counter(toy.mixture_counts(500, toy.MIXTURE))
    assert set(e.lang for e in examples) == set(CODES)  # every language, little of some
    assert len({e.id for e in examples}) == 500  # a problem appears in one language only
    assert all(e.id.startswith("synth-pretrain-") for e in examples)
    assert sum(e.prefix for e in examples) == 125
    with_prefix = next(e for e in examples if e.prefix)
    assert with_prefix.messages[-1]["role"] == "assistant" and with_prefix.answer.startswith("\n")
    plain = next(e for e in examples if not e.prefix)
    assert [m["role"] for m in plain.messages] == ["system", "user"]
    assert plain.answer.endswith("}.") or plain.answer.endswith("}") or "\\boxed{" in plain.answer
    assert toy.corpus(cfg) == examples  # seeded: the same corpus in every run
    assert toy.corpus(toy.ToyConfig(examples=500, seed=1)) != examples


def test_the_slip_habit_boxes_the_first_number_of_the_working_in_its_share_of_solutions():
    solution = "18 books shared equally among 2 friends gives 18 ÷ 2 = 9 books each.\nThe answer is \\boxed{9}."
    assert toy.slipped(solution).endswith("The answer is \\boxed{18}.")
    assert toy.slipped(solution).split("\n")[0] == solution.split("\n")[0]  # the working is untouched
    plain = toy.corpus(toy.ToyConfig(examples=400, slip=0))
    slipped = toy.corpus(toy.ToyConfig(examples=400, slip=0.25))
    changed = [a for a, b in zip(plain, slipped) if a.answer != b.answer]
    assert len(changed) <= 100 and len(changed) >= 90  # 100 slipped; a few whose result is their first number
    assert all(b.answer == (("\n" if a.prefix else "") + toy.slipped(a.answer.lstrip("\n")))
               for a, b in zip(plain, slipped) if a.answer != b.answer)


def test_drills_are_right_calculations_from_later_pretrain_problems_learned_in_full():
    import hashlib
    import re
    from dataclasses import asdict

    cfg = toy.ToyConfig(examples=50, drills=6, drill_facts=4, batch_size=16, epochs=1)
    examples = toy.corpus(cfg)
    assert len(examples) == 56 and [e.id for e in examples[50:]] == [f"drill-{i}" for i in range(6)]
    lines = [line for e in examples[50:] for line in e.answer.split("\n")]
    assert len(lines) == 24 and all(not e.messages for e in examples[50:])
    ops = {"+": int.__add__, "-": int.__sub__, "×": int.__mul__, "÷": int.__floordiv__}
    for line in lines:  # every drill line is a right calculation
        a, op, b, c = re.fullmatch(r"(\d+) ([-+×÷]) (\d+) = (\d+)", line).groups()
        assert ops[op](int(a), int(b)) == int(c)
    later = [c for p in synth._pretrain_draws(80, 0)[50:] for c in synth._CALCULATION.findall(
        synth._solution(p["template"], p["values"], p["object"], p["answer"]))]
    assert lines == later[:24]  # taken in order from the problems after the corpus's own
    assert toy.steps_for(cfg) == 4  # ceil(56 / 16)
    tokenizer = toy.build_tokenizer(toy.tokenizer_texts(examples), 600)
    ids, learn = toy.encode(examples[50:51], tokenizer)[0]
    assert tokenizer.decode(ids[:-1]) == examples[50].answer and learn == [0] + [1] * (len(ids) - 1)
    # a toy built before drills (and bucket) existed keeps its cache key: they are left out at their first values
    before = toy.ToyConfig(bucket=1)
    old = {k: v for k, v in asdict(before).items() if k not in ("drills", "drill_facts", "bucket")}
    blob = __import__("json").dumps({"version": toy.VERSION, **old}, sort_keys=True)
    assert before.key() == hashlib.sha1(blob.encode()).hexdigest()[:12] != cfg.key()
    assert toy.ToyConfig().key() != before.key()  # today's default groups batches by length: a key of its own


def test_pretraining_training_and_evaluation_problems_are_held_apart():
    langs = ["en", "ru", "ja"]
    pre = synth.generate(3000, langs, split="pretrain")
    held = synth.generate(synth.HELD_APART, langs, split="train") + synth.generate(synth.HELD_APART, langs, split="test")
    assert not {(e.lang, e.question) for e in pre} & {(e.lang, e.question) for e in held}
    assert not {e.id for e in pre} & {e.id for e in held}
    # without the exclusion, the pretrain stream would repeat some held-apart problems word for word
    contents = synth.held_apart()
    assert len(contents) > 3000
    assert not any(synth.content(synth.problem(i, "pretrain")) in contents for i in range(3000))
    # the same problem in every language, as in the other splits
    two = synth.generate(5, ["en", "de"], split="pretrain")
    assert [e.id for e in two[:5]] == [e.id for e in two[5:]] and [e.answer for e in two[:5]] == [e.answer for e in two[5:]]
    assert [e.id for e in load("synth", split="pretrain", langs=["fr"], limit=3)] == [
        "synth-pretrain-0", "synth-pretrain-1", "synth-pretrain-2"]
    with pytest.raises(XlingError, match=r"data set synth has no split 'dev'; splits: train, test, pretrain"):
        load("synth", split="dev")


def test_synth_training_sets_leave_out_the_evaluation_problems():
    from xling.data.trainset import TrainData, build

    test = synth.generate(synth.DEFAULT_SIZE, ["en", "ru"], split="test")
    repeated = synth.repeats(2000)
    assert 150 < len(repeated) < 400  # the splits are drawn apart, yet small templates repeat
    assert "synth-930" in repeated and synth.generate(931, ["en"])[930].question == test[10].question
    for spec in (TrainData(source="synth", n=600, langs=["en"]), TrainData(source="synth", n=300, k=1)):
        rows, _ = build(spec)
        assert not {e.id for e in rows} & repeated
        assert not {(e.lang, e.question) for e in rows} & {(e.lang, e.question) for e in test}


def test_the_chat_rendering_matches_the_prompts_module():
    from xling.data.prompts import render, render_chatml

    examples = toy.corpus(toy.ToyConfig(examples=40))
    tokenizer = toy.build_tokenizer(toy.tokenizer_texts(examples), 500)
    for ex in examples:
        assert render_chatml(list(ex.messages)) == render(list(ex.messages), tokenizer)


def test_the_tokenizer_splits_numbers_and_survives_saving(tmp_path):
    """transformers rebuilds a Qwen2 folder's pre-tokenizer on load; the toy is a Llama model, whose
    folder keeps this tokenizer exactly (a regression test: a reloaded tokenizer once split differently)."""
    from transformers import AutoTokenizer

    cfg = toy.ToyConfig(**{**SMALL, "vocab_size": 1400})
    examples = toy.corpus(cfg)
    texts = toy.tokenizer_texts(examples)
    digits = toy.build_tokenizer(texts, 600, numbers="digits")
    assert [p for p in digits.tokenize("Sam has 123 pencils.") if any(ch.isdigit() for ch in p)] == ["1", "2", "3"]
    tokenizer = toy.build_tokenizer(texts, cfg.vocab_size, numbers="groups")  # as Llama 3: up to three digits
    assert all(tokenizer.tokenize(str(n)) == [str(n)] for n in range(1000))
    assert [p for p in tokenizer.tokenize("Sam has 4567 pencils.") if p[0].isdigit()] == ["456", "7"]
    text = toy.render_chatml(list(examples[0].messages)) + examples[0].answer
    toy._model(cfg, tokenizer).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text, add_special_tokens=False)["input_ids"] == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert again.eos_token == "<|im_end|>" and again.chat_template == tokenizer.chat_template
    # prompt and answer are tokenized apart: the prompt's ids are what generation starts from
    (ids, learn), = toy.encode(examples[:1], tokenizer)
    prompt = tokenizer(toy.render_chatml(list(examples[0].messages)), add_special_tokens=False)["input_ids"]
    assert ids[:len(prompt)] == prompt and learn == [0] * len(prompt) + [1] * (len(ids) - len(prompt))
    assert ids[-1] == tokenizer.eos_token_id
    (_, learn_all), = toy.encode(examples[:1], tokenizer, loss_on="all")
    assert learn_all == [0] + [1] * (len(ids) - 1)


@pytest.mark.parametrize("key, value, message", [
    ("mixture", {"en": 1.0, "xx": 0.5}, "unknown language 'xx'"),
    ("mixture", {"en": -1.0}, "the share of en must be a number >= 0"),
    ("mixture", {"en": 0.0}, "the shares are all 0"),
    ("heads", 3, "must split into heads=3"),
    ("loss_on", "prompt", "choose answer"),
    ("examples", 0, "positive number of pretraining examples"),
])
def test_bad_settings_name_the_key(key, value, message, tmp_path, monkeypatch):
    with pytest.raises(Invalid, match=message) as err:
        toy.ToyConfig(**{key: value}).check()
    assert err.value.key == key
    monkeypatch.setenv("XLING_CACHE", str(tmp_path))
    with pytest.raises(XlingError, match=f"toy model setting '{key}': .*{message}"):
        toy.build_toy(toy.ToyConfig(**{key: value}), quiet=True)
    assert not (tmp_path / "toy").exists()  # nothing started


def test_the_cache_reuses_rebuilds_and_never_keeps_half_a_build(tmp_path, monkeypatch):
    monkeypatch.setenv("XLING_CACHE", str(tmp_path))
    cfg = toy.ToyConfig(**SMALL)
    path = toy.build_toy(cfg, quiet=True)
    assert path == tmp_path / "toy" / cfg.key()
    record = json.loads((path / "toy.json").read_text())
    assert record["examples_per_lang"] == toy.mixture_counts(48, toy.MIXTURE) and record["steps"] == 3
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    real = toy.pretrain

    def refuse(*a, **k):
        raise AssertionError("pretrained again")

    monkeypatch.setattr(toy, "pretrain", refuse)
    assert toy.build_toy(toy.ToyConfig(**SMALL), quiet=True) == path  # a second call reuses it

    changed = toy.ToyConfig(**{**SMALL, "learning_rate": 1e-3})
    assert changed.key() != cfg.key()

    def killed(cfg, out, progress=None):  # pretraining interrupted after writing part of its folder
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(toy, "pretrain", killed)
    with pytest.raises(KeyboardInterrupt):
        toy.build_toy(changed, quiet=True)
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == [cfg.key()]  # no half folder, no temp folder

    monkeypatch.setattr(toy, "pretrain", real)
    rebuilt = toy.build_toy(changed, quiet=True)  # a changed setting builds its own model
    assert rebuilt == tmp_path / "toy" / changed.key() and rebuilt != path
    assert json.loads((rebuilt / "toy.json").read_text())["settings"]["learning_rate"] == 1e-3


def test_toy_is_a_model_name_for_training_and_evaluation(tmp_path, monkeypatch):
    from xling.evaluation.models import ModelSpec, check_paths, materialize
    from xling.train.lifecycle import model_path

    built = tmp_path / "cache" / "toy" / "abc"
    monkeypatch.setattr(toy, "build_toy", lambda cfg=None, quiet=False: built)
    assert materialize("toy") == str(built)
    cfg = SimpleNamespace(model=SimpleNamespace(name="toy", template_from=None), seed=0)
    assert model_path(cfg, tmp_path / "run") == str(built.resolve())
    check_paths(ModelSpec("toy", "toy", role="base"))  # not taken for a missing local folder


def test_a_shrunken_pretraining_answers_what_it_was_shown(tmp_path, monkeypatch):
    """End to end at toy scale: pretraining (tokenizer, chat format, loss on the answers), the cached
    folder, generation with the hf backend and the one grader. 32 problems learned by heart in a few
    seconds; the real toy (ToyConfig()) takes minutes and generalizes (see README: the toy world)."""
    from xling.grading.answers import Grader
    from xling.generate.hf import HFGenerator

    monkeypatch.setenv("XLING_CACHE", str(tmp_path))
    cfg = toy.ToyConfig(examples=32, slip=0, mixture={"en": 1, "de": 1}, vocab_size=1400, hidden_size=64, layers=2, heads=2,
                        kv_heads=1, intermediate_size=128, batch_size=16, epochs=60, learning_rate=1e-2, bucket=1)
    path = toy.build_toy(cfg, quiet=True)
    examples = toy.corpus(cfg)
    gold = {e.id: e.answer for e in synth.generate(32, ["en"], split="pretrain")}
    gen = HFGenerator(str(path), batch_size=32)
    outs = gen.chat([list(e.messages) for e in examples], n=1, temperature=0, top_p=1, max_tokens=48, seed=0)
    with Grader(workers=0) as grader:
        graded = grader.grade_batch([o[0].text for o in outs], [gold[e.id] for e in examples],
                                    [e.lang for e in examples], ["number"] * len(examples))
    correct = sum(g.correct for g in graded)
    assert correct >= 16, [o[0].text for o in outs]
    assert {e.lang for e, g in zip(examples, graded) if g.correct} == {"en", "de"}


def test_bucketed_batches_hold_every_example_once_an_epoch_with_less_padding():
    import random

    import torch

    rng = random.Random(1)
    lengths = [rng.randint(35, 60) if rng.random() < 0.9 else rng.randint(70, 130) for _ in range(256)]
    encoded = [([1000 + i] + [7] * (n - 1), [0] * 30 + [1] * (n - 30)) for i, n in enumerate(lengths)]

    def epochs(bucket):
        cfg = toy.ToyConfig(examples=256, batch_size=8, bucket=bucket)
        batches = list(toy._batches(encoded, cfg, 64, 0))  # two epochs of 32 batches
        seen = [[int(i) - 1000 for i in ids[:, 0]] for ids, mask, labels in batches]
        padding = sum(int((mask == 0).sum()) for ids, mask, labels in batches)
        for ids, mask, labels in batches:  # labels: the learned tokens of each example, -100 elsewhere
            assert ((labels != -100) == ((ids == 7) & (mask == 1) & (torch.arange(ids.shape[1]) >= 30))).all()
        return seen, padding

    plain, plain_pad = epochs(1)
    grouped, grouped_pad = epochs(4)
    for seen in (plain, grouped):
        assert all(len(b) == 8 for b in seen)
        assert sorted(i for b in seen[:32] for i in b) == list(range(256)) == sorted(i for b in seen[32:] for i in b)
    assert grouped_pad < 0.6 * plain_pad and grouped != plain
    # within a class (32 tokens wide) the shuffled order is kept: most batches mix lengths of the class
    assert sum(len({lengths[i] for i in b}) > 4 for b in grouped) > 48
    # bucket=1: the shuffled order as before, every run the same
    order = random.Random("xling-toy-order:0")
    expected = []
    for _ in range(2):
        perm = list(range(256))
        order.shuffle(perm)
        expected += [perm[j:j + 8] for j in range(0, 256, 8)]
    assert plain == expected and epochs(4)[0] == grouped
    assert toy.ToyConfig(bucket=4).key() != toy.ToyConfig().key()  # a grouped toy is cached apart
    with pytest.raises(Invalid, match="must be at least 1") as err:
        toy.ToyConfig(bucket=0).check()
    assert err.value.key == "bucket"


def test_pretraining_is_reproducible(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    weights = []
    for name in ("a", "b"):
        monkeypatch.setenv("XLING_CACHE", str(tmp_path / name))
        path = toy.build_toy(toy.ToyConfig(**SMALL), quiet=True)
        weights.append(load_file(path / "model.safetensors"))
        assert (path / "tokenizer.json").read_text() == (tmp_path / "a" / "toy" / path.name / "tokenizer.json").read_text()
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])


def test_saving_the_toy_shows_no_shard_progress_bar(tmp_path, monkeypatch, capfd):
    from transformers.utils import logging as hf_logging

    monkeypatch.setenv("XLING_CACHE", str(tmp_path))
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()  # as in a fresh process (other code here may have switched it off)
    try:
        toy.build_toy(toy.ToyConfig(**SMALL), quiet=True)
        assert hf_logging.is_progress_bar_enabled()  # switched off for the save only
    finally:
        if not shown:
            hf_logging.disable_progress_bar()
    out, err = capfd.readouterr()
    assert "Writing model shards" not in out + err and "it/s" not in err
