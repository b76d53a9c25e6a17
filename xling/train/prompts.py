"""Training prompts as strings: the chat template rendered, the assistant prefix appended, length-checked.

TRL's GRPOTrainer always renders conversational prompts with `add_generation_prompt=True`, so a
pre-filled assistant turn (prompt hacking) would be closed and a new turn opened. xling therefore
hands GRPO (and SFT, RFT) *string* prompts rendered by `xling.data.prompts.render` — the template with
the assistant turn left open and the prefix in it — which the model continues. TRL 1.14 has no
`max_prompt_length`: prompts longer than the limit are dropped here and counted per language.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from xling.common.errors import XlingError


def prompt_template(tokenizer: Any, template_from: Any = None) -> str:
    """The Jinja chat template the prompts are rendered with (raises XlingError for a base model without one)."""
    from xling.data.prompts import chat_template_for

    return chat_template_for(tokenizer, template_from)


def adds_bos(tokenizer: Any) -> bool:
    """Whether tokenizing text prepends a BOS token (Llama-3 does; Qwen does not)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("x")["input_ids"]
    return bool(ids) and ids[0] == bos


def render_prompts(messages: Iterable[list[dict]], tokenizer: Any, template: str) -> list[str]:
    """Each conversation as the text the model continues, without a BOS the tokenizer adds again."""
    from xling.data.prompts import render

    strip = tokenizer.bos_token if adds_bos(tokenizer) else None
    out = []
    for msgs in messages:
        text = render(list(msgs), tokenizer, template_from=template)
        if strip and text.startswith(strip):
            text = text[len(strip):]
        out.append(text)
    return out


def token_lengths(texts: list[str], tokenizer: Any, batch: int = 512) -> list[int]:
    out: list[int] = []
    for i in range(0, len(texts), batch):
        out.extend(len(ids) for ids in tokenizer(texts[i:i + batch])["input_ids"])
    return out


def string_prompts(records: list[dict], tokenizer: Any, template: str, max_tokens: int | None,
                   ) -> tuple[list[dict], dict]:
    """Records with `prompt` rendered to a string; those over `max_tokens` dropped.

    Returns (kept records, report) where report = {"kept", "dropped", "dropped_by_lang", "max_tokens",
    "longest"}. Raises XlingError when nothing is left.
    """
    texts = render_prompts((r["prompt"] for r in records), tokenizer, template)
    lengths = token_lengths(texts, tokenizer)
    kept, dropped = [], Counter()
    for rec, text, n in zip(records, texts, lengths):
        if max_tokens is not None and n > max_tokens:
            dropped[rec.get("lang", "?")] += 1
            continue
        kept.append({**rec, "prompt": text})
    report = {"kept": len(kept), "dropped": sum(dropped.values()), "dropped_by_lang": dict(sorted(dropped.items())),
              "max_tokens": max_tokens, "longest": max(lengths, default=0)}
    if not kept:
        raise XlingError(f"every training prompt is longer than {max_tokens} tokens (longest {report['longest']}); "
                         "raise grpo.max_prompt_length")
    return kept, report
