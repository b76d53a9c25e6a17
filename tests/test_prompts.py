"""Prompts: the paper's system message in every language, prompt hacking, and rendering for instruct and base models."""

from __future__ import annotations

import pytest

from xling.data import Example
from xling.common.errors import XlingError
from xling.data.languages import CODES, LANGUAGES
from xling.data.prompts import (
    CHATML, R1_SYSTEM, SOLVE, VARIANTS, build_messages, chat_flags, chat_template_for, continues, render, system_prompt,
)

QUESTION = "Janet has 16 eggs and eats 3. How many are left?"


@pytest.fixture(scope="module")
def instruct_tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def base_tok(tiny_base_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base_model)


@pytest.mark.parametrize("lang", CODES)
def test_messages_every_language(lang):
    row = LANGUAGES[lang]
    ex = Example("p-1", lang, QUESTION, "13")
    plain = build_messages(ex)
    assert [m["role"] for m in plain] == ["system", "user"]
    assert plain[0]["content"] == f"{row.think} {SOLVE}"  # the first sentence in the language, the rest English
    assert plain[1]["content"] == QUESTION
    hacked = build_messages(ex, prefix=True)
    assert hacked[:2] == plain
    assert hacked[2] == {"role": "assistant", "content": row.prefix}
    assert not continues(plain) and continues(hacked)


@pytest.mark.parametrize("lang", CODES)
def test_render_instruct_every_language(lang, instruct_tok):
    ex = {"question": QUESTION, "lang": lang}
    row = LANGUAGES[lang]
    text = render(build_messages(ex), instruct_tok)
    assert text.startswith("<|im_start|>system\n" + row.think)
    assert text.endswith(f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n")
    hacked = render(build_messages(ex, prefix=True), instruct_tok)
    assert hacked.endswith(f"<|im_start|>assistant\n{row.prefix}")  # left open: the model continues it
    assert not hacked.endswith("<|im_end|>\n")
    ids = instruct_tok(hacked, add_special_tokens=False)["input_ids"]
    assert instruct_tok.decode(ids) == hacked  # every script survives tokenisation


@pytest.mark.parametrize("lang", CODES)
def test_render_base_with_borrowed_template(lang, base_tok, instruct_tok, tiny_model):
    ex = {"question": QUESTION, "lang": lang}
    for prefix in (False, True):
        messages = build_messages(ex, prefix=prefix)
        expected = render(messages, instruct_tok)
        assert render(messages, base_tok, template_from=instruct_tok) == expected
        assert render(messages, base_tok, template_from=str(tiny_model)) == expected
        assert render(messages, base_tok, template_from="chatml") == expected


def test_base_without_template_is_an_error(base_tok):
    with pytest.raises(XlingError, match=r"has no chat template \(a base model\?\); give template_from=INSTRUCT_MODEL"):
        render(build_messages({"question": QUESTION, "lang": "en"}), base_tok)


def test_bad_template_source(base_tok, tmp_path):
    with pytest.raises(XlingError, match="cannot load a tokenizer from template_from"):
        chat_template_for(base_tok, str(tmp_path / "missing-model"))
    with pytest.raises(XlingError, match="has no chat template either"):
        chat_template_for(base_tok, base_tok)


def test_template_string_and_builtin(base_tok):
    assert chat_template_for(base_tok, "chatml") == CHATML == chat_template_for(base_tok, "qwen2.5")
    custom = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
    text = render([{"role": "user", "content": "hi"}], base_tok, template_from=custom)
    assert text == "[user]hi"


def test_variants():
    assert VARIANTS == ("paper", "paper-user", "r1", "consistency", "bare")
    sw = system_prompt("sw", "consistency")
    assert sw.startswith(LANGUAGES["sw"].think) and "in Swahili only" in sw and sw.endswith(SOLVE)
    assert system_prompt("ja", "bare") == SOLVE
    with pytest.raises(XlingError, match="unknown prompt variant 'fancy'"):
        system_prompt("en", "fancy")
    with pytest.raises(XlingError, match="unknown language 'xx'"):
        build_messages({"question": "q", "lang": "xx"})


def test_paper_user_variant_is_appendix_f1_as_one_user_message(base_tok):
    """F.1: "Please always think in …", blank line, the solve sentence, blank line, "Problem: …"; no system turn."""
    msgs = build_messages({"question": "Wie viel ist 2 + 3?", "lang": "de"}, variant="paper-user", prefix=True)
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[0]["content"] == ("Bitte denken Sie immer auf Deutsch.\n\n" + SOLVE + "\n\nProblem: Wie viel ist 2 + 3?")
    assert msgs[1]["content"] == LANGUAGES["de"].prefix
    text = render(msgs, base_tok, template_from="chatml")
    assert text == ("<|im_start|>user\nBitte denken Sie immer auf Deutsch.\n\n" + SOLVE
                    + "\n\nProblem: Wie viel ist 2 + 3?<|im_end|>\n<|im_start|>assistant\n" + LANGUAGES["de"].prefix)


def test_r1_variant_for_base_models():
    msgs = build_messages({"question": "2 + 3?", "lang": "ja"}, variant="r1")
    assert [m["role"] for m in msgs] == ["system", "user"] and msgs[1]["content"] == "2 + 3?"
    assert msgs[0]["content"] == f"{R1_SYSTEM} {LANGUAGES['ja'].think}"
    assert "<think> </think>" in R1_SYSTEM and "\\boxed{}" in R1_SYSTEM


def test_think_language_override():
    msgs = build_messages({"question": "Swali", "lang": "sw"}, prefix=True, think="en")
    assert msgs[0]["content"].startswith("Please always think in English.")
    assert msgs[-1]["content"] == LANGUAGES["en"].prefix and msgs[1]["content"] == "Swali"


def test_chat_flags():
    assert chat_flags(build_messages({"question": "q", "lang": "de"})) == {
        "add_generation_prompt": True, "continue_final_message": False}
    assert chat_flags(build_messages({"question": "q", "lang": "de"}, prefix=True)) == {
        "add_generation_prompt": False, "continue_final_message": True}
