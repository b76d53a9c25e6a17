"""What every GRPO reward shares: a completion's text, the data columns TRL passes, per-language logging,
and the `Reward` base class.

In: what TRL calls a reward with (``prompts``, ``completions``, the data set's columns and its
``log_metric``). Out: completion and assistant-prefix texts (`completion_text`, `assistant_prefix`),
checked columns (a missing or unknown value named in one line), per-language metrics logged, and
`Reward`: a picklable callable that checks its columns before training, loads its models
(`prepare`) and refuses a batch it could score none of.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

from xling.common.errors import XlingError
from xling.data.languages import LANGUAGES, unknown_language_message

def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the assistant messages of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _content(completion.get("content"))
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, Mapping)]
        chosen = [m for m in messages if m.get("role") == "assistant"] or messages
        return "".join(_content(m.get("content")) for m in chosen)
    return "" if completion is None else str(completion)


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def assistant_prefix(prompt: Any) -> str:
    """The pre-filled assistant turn at the end of a prompt (prompt hacking), or ''.

    For a rendered string prompt, the text after the last opened `<think>` that is not closed
    (a chat template or a prefix may open the reasoning block), else ''.
    """
    if isinstance(prompt, str):
        opened = prompt.rfind("<think>")
        return prompt[opened:] if opened > prompt.rfind("</think>") else ""
    if isinstance(prompt, Sequence) and prompt:
        last = prompt[-1]
        if isinstance(last, Mapping) and last.get("role") == "assistant":
            return _content(last.get("content"))
    return ""


def _column(kwargs: dict, name: str, n: int, reward: str, default: Any = None, required: bool = True) -> list:
    values = kwargs.get(name)
    if values is None:
        if required:
            raise XlingError(f"reward '{reward}' needs the '{name}' column in the training data; add it to every example")
        return [default] * n
    values = list(values)
    if len(values) != n:
        raise XlingError(f"reward '{reward}': column '{name}' has {len(values)} values for {n} completions")
    return [default if v is None else v for v in values]


def _langs(kwargs: dict, n: int, reward: str) -> list[str]:
    langs = _column(kwargs, "lang", n, reward)
    for code in set(langs):
        if code not in LANGUAGES:
            raise XlingError(f"reward '{reward}', column 'lang': {unknown_language_message(code)}")
    return langs


def _log(kwargs: dict, name: str, value: float) -> None:
    log_metric = kwargs.get("log_metric")
    if callable(log_metric):
        log_metric(name, float(value))


def _log_by_language(kwargs: dict, prefix: str, langs: Sequence[str], values: Sequence[float | None]) -> None:
    groups: dict[str, list[float]] = defaultdict(list)
    for lang, v in zip(langs, values):
        if v is not None:
            groups[lang].append(v)
    for lang in sorted(groups):
        _log(kwargs, f"{prefix}/{lang}", sum(groups[lang]) / len(groups[lang]))


class Reward:
    """Base of the reward callables: picklable objects with a `__name__` TRL logs them under."""

    name = "reward"
    # Columns of the training data this reward reads, each needing a value in every row.
    reads: tuple[str, ...] = ()
    # Why a whole batch of None would happen: said in the error that stops the run.
    none_reason = "it could score none of them"

    def __init__(self, options: Any):  # xling.train.rewards.RewardOptions
        self.options = options
        self.__name__ = f"{self.name}_reward"

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None,
                 **kwargs: Any) -> list[float | None]:
        completions = list(completions or [])
        texts = [completion_text(c) for c in completions]
        prompts = list(prompts) if prompts is not None else [None] * len(texts)
        out = self.score(prompts, texts, kwargs)
        if out and all(v is None for v in out):
            raise XlingError(f"reward '{self.name}' gave no value for any of the {len(out)} completions of a batch "
                             f"({self.none_reason}); stopped rather than train on nothing")
        return out

    def score(self, prompts: list, texts: list[str], kwargs: dict) -> list[float | None]:
        raise NotImplementedError

    def check_columns(self, records: Sequence[Mapping], made_by: Mapping[str, str]) -> None:
        """Every training row has a value in each column this reward reads (else XlingError naming the column)."""
        for column in self.reads:
            missing = sum(1 for r in records if _empty(r.get(column)))
            if missing:
                how = made_by.get(column, f"add a '{column}' value to every example")
                what = ("the training data has none" if missing == len(records)
                        else f"{missing} of {len(records)} training rows have none")
                raise XlingError(f"`{column}`: {what}, and reward '{self.name}' reads it; {how}")

    def prepare(self, langs: Sequence[str]) -> None:
        """Load the models this reward needs and check they can judge answers in `langs`."""

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())

