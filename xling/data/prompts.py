"""Prompts, exactly as the paper built them (docs/protocol.md#prompts), for training and evaluation alike.

    messages = build_messages(example, prefix=True)        # system + user (+ assistant pre-fill)
    text = render(messages, tokenizer, template_from=None)  # the string the model continues

The system message is the target language's "Please always think in …" sentence (in that
language, from the language table) followed by the instruction to solve step by step and box the
answer. That second sentence stays in English in every language: the paper's prompt puts only
the first sentence in the target language, and keeping the rest fixed means one instruction for
all languages. Prompt hacking pre-fills the assistant turn with the language's prefix ("By
request, I will start thinking in …"); the model continues that message (`continue_final_message`).

Variants:
- `paper` (default): the paper's prompt, as above (system message + the problem as the user turn).
- `paper-user`: the same words as the paper's Appendix F.1 prints them, in one user message and no
  system message: "Please always think in …" (in the target language), a blank line, the solve
  sentence, a blank line, "Problem: {question}".
- `r1`: an R1-Zero-style system template for base models (the paper's Appendix F.3 form): think
  first inside <think> </think>, then give the final answer in \boxed{}; the target language's
  "Please always think in …" sentence follows it. The wording is R1-Zero's template adapted to
  \boxed{} answers, not a verbatim copy of F.3.
- `consistency`: adds an explicit instruction to reason AND answer in the target language (the
  language-consistency prompt ablation of "Beyond English-Centric Training", ICLR 2026).
- `bare`: only the English instruction, no language sentence (a baseline without language control).

Base models have no chat template; the paper renders them with the instruct model's template.
`render(..., template_from=INSTRUCT_TOKENIZER_OR_PATH)` does that; `template_from="chatml"` uses
the built-in ChatML template of the Qwen2.5 instruct models.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Mapping

from xling.common.errors import XlingError
from xling.data.languages import get

SOLVE = ("Solve the following mathematics problem step by step. At the end, provide your final answer "
         "enclosed in \\boxed{}.")
CONSISTENCY = ("Write all of your reasoning and your final answer in {name} only, without switching to "
               "another language.")
R1_SYSTEM = ("A conversation between User and Assistant. The User asks a question, and the Assistant solves it. "
             "The Assistant first thinks about the reasoning process in the mind and then provides the User with "
             "the answer. The reasoning process is enclosed within <think> </think> tags, and the final answer is "
             "enclosed in \\boxed{}, i.e., <think> reasoning process here </think> answer here with \\boxed{answer}.")
VARIANTS = ("paper", "paper-user", "r1", "consistency", "bare")
Variant = Literal["paper", "paper-user", "r1", "consistency", "bare"]  # the recipes' `variant` key

# ChatML as the Qwen2.5 instruct models use it (Qwen's own template adds a default system prompt
# when a conversation has none; every xling prompt but the `paper-user` variant's has one, so the
# two render the same; `paper-user` renders without a system turn here and with Qwen's default there).
CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
BUILTIN_TEMPLATES = {"chatml": CHATML, "qwen2.5": CHATML}


def system_prompt(lang: str, variant: str = "paper") -> str | None:
    """The system message for reasoning in `lang` (None for `paper-user`, which has none)."""
    if variant not in VARIANTS:
        raise XlingError(f"unknown prompt variant '{variant}'; variants: {', '.join(VARIANTS)}")
    row = get(lang)
    if variant == "bare":
        return SOLVE
    if variant == "consistency":
        return f"{row.think} {CONSISTENCY.format(name=row.name)} {SOLVE}"
    if variant == "paper-user":
        return None
    if variant == "r1":
        return f"{R1_SYSTEM} {row.think}"
    return f"{row.think} {SOLVE}"


def user_prompt(question: str, lang: str, variant: str = "paper") -> str:
    """The user turn: the problem itself, or for `paper-user` the whole instruction block of Appendix F.1."""
    if variant == "paper-user":
        return f"{get(lang).think}\n\n{SOLVE}\n\nProblem: {question}"
    return question


def _field(example: Any, name: str) -> Any:
    return example[name] if isinstance(example, Mapping) else getattr(example, name)


def build_messages(example: Any, *, prefix: bool = False, variant: str = "paper",
                   think: str | None = None) -> list[dict[str, str]]:
    """Chat messages for one problem: system, user, and with `prefix` the assistant pre-fill.

    `example` is an Example or a mapping with `question` and `lang`. `think` sets the reasoning
    language when it should differ from the problem's (default: the problem's language).
    """
    lang = think or _field(example, "lang")
    row = get(lang)
    system = system_prompt(lang, variant)
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": user_prompt(str(_field(example, "question")), lang, variant)})
    if prefix:
        messages.append({"role": "assistant", "content": row.prefix})
    return messages


def continues(messages: list[dict[str, str]]) -> bool:
    """Whether the model continues the last message (it is an assistant pre-fill)."""
    return bool(messages) and messages[-1]["role"] == "assistant"


def chat_flags(messages: list[dict[str, str]]) -> dict[str, bool]:
    """The keyword arguments for `llm.chat` / `apply_chat_template` that these messages need."""
    cont = continues(messages)
    return {"add_generation_prompt": not cont, "continue_final_message": cont}


def _tokenizer_template(tok: Any) -> str | None:
    template = getattr(tok, "chat_template", None)
    if isinstance(template, dict):  # named templates: use the default one
        template = template.get("default") or next(iter(template.values()), None)
    return template or None


def chat_template_for(tokenizer: Any, template_from: Any = None) -> str:
    """The chat template to render with: `template_from`'s if given, else the tokenizer's own.

    `template_from` is a tokenizer, a local model path or hub id (its tokenizer is loaded), a
    built-in name ('chatml', 'qwen2.5') or a Jinja template string.
    """
    if template_from is None:
        own = _tokenizer_template(tokenizer)
        if own is None:
            name = getattr(tokenizer, "name_or_path", "") or "this tokenizer"
            raise XlingError(
                f"{name} has no chat template (a base model?); give template_from=INSTRUCT_MODEL to borrow "
                "the instruct model's template, as the paper does, or template_from=chatml"
            )
        return own
    if isinstance(template_from, os.PathLike):
        template_from = os.fspath(template_from)
    if isinstance(template_from, str):
        if template_from.lower() in BUILTIN_TEMPLATES:
            return BUILTIN_TEMPLATES[template_from.lower()]
        if "{%" in template_from or "{{" in template_from:
            return template_from
        from transformers import AutoTokenizer

        try:
            other = AutoTokenizer.from_pretrained(template_from)
        except Exception as e:
            raise XlingError(f"cannot load a tokenizer from template_from={template_from!r} "
                             f"({type(e).__name__}); give a local instruct model folder or 'chatml'") from None
        template_from = other
    template = _tokenizer_template(template_from)
    if template is None:
        raise XlingError("the tokenizer given as template_from has no chat template either; "
                         "give an instruct model or 'chatml'")
    return template


def render(messages: list[dict[str, str]], tokenizer: Any, template_from: Any = None) -> str:
    """The prompt text the model continues, with a pre-filled assistant turn left open.

    Uses the tokenizer's chat template, or `template_from`'s (see `chat_template_for`).
    """
    template = chat_template_for(tokenizer, template_from)
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, **chat_flags(messages))


_TEMPLATE: list = []


def render_chatml(messages: list[dict[str, str]]) -> str:
    """The prompt as the ChatML template renders it, a pre-filled turn left open (as `render` does), without
    a tokenizer: what the toy model's tokenizer is trained on (`xling.models.toy`)."""
    if not _TEMPLATE:
        from jinja2 import Template

        _TEMPLATE.append(Template(CHATML))
    text = _TEMPLATE[0].render(messages=messages, **chat_flags(messages))
    if continues(messages):
        last = messages[-1]["content"]
        text = text[:text.rindex(last) + len(last)]
    return text
