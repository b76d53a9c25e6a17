"""Reward functions for GRPO, with TRL's signature, built on the one grader (`xling.grading.answers`).

A reward is called as ``f(prompts, completions, **columns) -> list[float | None]``: TRL passes the
data set's columns (``answer``, ``lang``, optional ``kind`` and ``reference``) plus
``completion_ids``, ``trainer_state``, ``log_extra`` and ``log_metric`` (trl 1.14.2,
`GRPOTrainer._calculate_rewards`), all as keywords. Completions are strings or conversational
(a list of ``{"role", "content"}`` messages); with prompt hacking the assistant prefix is the last
message of the prompt and is not part of the completion (it is not judged for language).

Rewards (each is 1.0 or 0.0 unless said otherwise):
- ``accuracy``: the final answer is right (`xling.grading.answers.grade`; kind per example from a ``kind``
  column, else the `kind` option, default ``math``). None where the gold answer cannot be parsed:
  TRL then leaves this reward out for that completion, and the count is logged.
- ``format``: a complete, non-empty ``\\boxed{}``; with `require_think`, also ``<think>...</think>``
  (the opening tag may be in the assistant prefix) with the box after ``</think>``.
- ``language`` / ``consistency``: the detected language (`xling.grading.langid.detect`, backend option
  `langid`) is the requested one; an undetermined language earns 0.0.
- ``pivot`` (PB-RLSVR, `xling.train.pivot_rewards`): cosine similarity, clipped to [0, 1], between the completion's answer part
  (the text after ``</think>``, else all of it) and the English reference answer (``reference``
  column, written by the pivot stage, `xling.derived.pivot`) under a multilingual sentence-embedding
  model (default `DEFAULT_EMBEDDING_MODEL`, LaBSE: all 11 languages); None where the reference is
  missing.
- ``pivot_translate`` (PB-RLSVR, translate-then-compare): the answer part is first translated into
  English with a local model (`xling.derived.translate`'s translator, option `translator`; English answers
  are left as they are), then compared with the reference by the same cosine.

What every reward shares (the completion's text, the columns, per-language logging, the `Reward`
base class) is `xling.train.reward_base`'s. Every reward checks, before training (`preflight`), that the training rows hold the columns it
reads (naming the stage that makes a missing one) and loads the models it needs; a reward that
gives None for every completion of a batch raises rather than letting training learn nothing.

Reward sets (`REWARD_SETS`) name weighted mixes; `build_rewards(name, **options)` returns the
functions and weights for ``GRPOTrainer(reward_funcs=funcs, args=GRPOConfig(reward_weights=weights))``.
Per batch, rewards report through ``log_metric``: ``accuracy/<lang>``, ``on_target/<lang>`` and
``undetermined/<lang>`` (fractions), ``grading/unparseable_gold`` and ``grading/timeouts`` (counts).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from xling.grading import langid as L
from xling.grading.answers import KINDS, UNPARSEABLE_GOLD, TIMEOUT, Grader, default_workers
from xling.grading.boxes import boxes
from xling.common.errors import XlingError
from xling.train.pivot_rewards import (
    DEFAULT_EMBEDDING_MODEL, EMBEDDING_LANGUAGES, PivotReward, TranslatePivotReward, answer_part, load_embedder,
    load_translator,
)
from xling.train.reward_base import Reward, _column, _langs, _log, _log_by_language, assistant_prefix, completion_text

# Named mixes of rewards: name -> {reward: weight}. The training recipe picks one by name.
REWARD_SETS: dict[str, dict[str, float]] = {
    "paper": {"accuracy": 0.8, "format": 0.1, "language": 0.1},  # Parallel Scaling Law (docs/protocol.md#rewards)
    "consistency": {"accuracy": 0.5, "consistency": 0.5},  # ICLR 2026 ablation
    "accuracy": {"accuracy": 1.0},
    "accuracy-format": {"accuracy": 0.9, "format": 0.1},
    "pivot": {"pivot": 1.0},  # PB-RLSVR: no target-language gold labels
    "pivot-format": {"pivot": 0.9, "format": 0.1},
    "pivot-translate": {"pivot_translate": 1.0},  # PB-RLSVR, translate-then-compare
    # the paper's mix with the semantic reward in place of accuracy: answers stay in the requested language
    "pivot-language": {"pivot": 0.8, "format": 0.1, "language": 0.1},
}


class AccuracyReward(Reward):
    name = "accuracy"
    reads = ("answer", "lang")
    none_reason = "every gold answer of the batch is unparseable"

    def score(self, prompts, texts, kwargs):
        n = len(texts)
        answers = _column(kwargs, "answer", n, self.name)
        langs = _langs(kwargs, n, self.name)
        kinds = _column(kwargs, "kind", n, self.name, default=self.options.kind, required=False)
        bad = sorted({k for k in kinds if k not in KINDS})
        if bad:
            raise XlingError(f"reward 'accuracy', column 'kind': unknown kind '{bad[0]}'; choose one of: {', '.join(KINDS)}")
        results = self.options.grader.grade_batch(texts, answers, langs, kinds)
        rewards = [None if r.error == UNPARSEABLE_GOLD else float(r.correct) for r in results]
        _log_by_language(kwargs, "accuracy", langs, rewards)
        _log(kwargs, "grading/unparseable_gold", sum(r.error == UNPARSEABLE_GOLD for r in results))
        _log(kwargs, "grading/timeouts", sum(r.error == TIMEOUT for r in results))
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            log_extra("extracted", [r.extracted for r in results])
        return rewards


class FormatReward(Reward):
    name = "format"

    def score(self, prompts, texts, kwargs):
        out: list[float | None] = []
        for prompt, text in zip(prompts, texts):
            out.append(float(self._ok(assistant_prefix(prompt), text)))
        return out

    def _ok(self, prefix: str, text: str) -> bool:
        body = text
        if self.options.require_think:
            full = prefix + text
            if full.count("</think>") != 1 or "<think>" not in full.split("</think>")[0]:
                return False
            body = text.split("</think>", 1)[1] if "</think>" in text else ""
        return any(content for _, _, content in boxes(body))


class LanguageReward(Reward):
    name = "language"
    reads = ("lang",)

    def score(self, prompts, texts, kwargs):
        langs = _langs(kwargs, len(texts), self.name)
        o = self.options
        pool = o.grader.pool if o.langid in ("langdetect", "langid") and len(texts) > 64 else None
        detected = L.detect_batch(texts, o.langid, min_chars=o.min_chars, reasoning_only=o.reasoning_only, pool=pool)
        rewards: list[float | None] = [float(d == lang) for d, lang in zip(detected, langs)]
        _log_by_language(kwargs, "on_target", langs, [None if d is None else float(d == lang) for d, lang in zip(detected, langs)])
        _log_by_language(kwargs, "undetermined", langs, [float(d is None) for d in detected])
        return rewards


class ConsistencyReward(LanguageReward):
    """The ICLR-2026 language-consistency reward: the same check, logged under its own name."""

    name = "consistency"


REWARD_FUNCTIONS: dict[str, type[Reward]] = {
    "accuracy": AccuracyReward,
    "format": FormatReward,
    "language": LanguageReward,
    "consistency": ConsistencyReward,
    "pivot": PivotReward,
    "pivot_translate": TranslatePivotReward,
}


class RewardOptions:
    """What the rewards of one `build_rewards` call share: options and one grader (one pool)."""

    def __init__(self, *, kind: str = "math", langid: str = L.DEFAULT_BACKEND, min_chars: int = L.DEFAULT_MIN_CHARS,
                 reasoning_only: bool = False, require_think: bool = False, timeout: float = 5.0,
                 workers: int | None = None, embedding_model: str = DEFAULT_EMBEDDING_MODEL,
                 embedding_device: str | None = None, translator: str | None = None,
                 translator_fn: Callable | None = None, grader: Grader | None = None):
        if kind not in KINDS:
            raise XlingError(f"unknown answer kind '{kind}'; choose one of: {', '.join(KINDS)}")
        L.check_backend(langid)
        self.kind = kind
        self.langid = langid
        self.min_chars = min_chars
        self.reasoning_only = reasoning_only
        self.require_think = require_think
        self.embedding_model = str(embedding_model)
        self.embedding_device = embedding_device
        self.translator = translator  # pivot_translate: the model that translates answers into English
        self.translator_fn = translator_fn  # or a translator function `(texts, lang, source=...) -> texts`
        self.grader = grader or Grader(timeout=timeout, workers=default_workers() if workers is None else workers)


def build_rewards(rewards: str | Mapping[str, float] = "paper", **options: Any) -> tuple[list[Callable], list[float]]:
    """(reward functions, weights) for a named set of `REWARD_SETS` or a {reward: weight} mapping.

    Options (all rewards of the call share them and one grader): kind, langid, min_chars,
    reasoning_only, require_think, timeout, workers, embedding_model, embedding_device, translator,
    translator_fn, grader.
    """
    if isinstance(rewards, str):
        if rewards not in REWARD_SETS:
            raise XlingError(f"unknown reward set '{rewards}'; choose one of: {', '.join(REWARD_SETS)} "
                             f"(or give a mapping of {', '.join(REWARD_FUNCTIONS)} to weights)")
        mix = REWARD_SETS[rewards]
    else:
        mix = dict(rewards)
    if not mix:
        raise XlingError("no rewards given; name a reward set or give at least one reward with its weight")
    for name, weight in mix.items():
        if name not in REWARD_FUNCTIONS:
            raise XlingError(f"unknown reward '{name}'; choose from: {', '.join(REWARD_FUNCTIONS)}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise XlingError(f"reward '{name}' has weight {weight!r}; weights are finite numbers")
    try:
        shared = RewardOptions(**options)
    except TypeError as e:
        raise XlingError(f"build_rewards: {e}") from None
    funcs = [REWARD_FUNCTIONS[name](shared) for name in mix]
    return funcs, [float(w) for w in mix.values()]


def load_models(rewards: str | Mapping[str, float], langs: Sequence[str], **options: Any) -> None:
    """Load every model the rewards need (cached for the rewards themselves) and check that they can
    judge answers in `langs`; raises XlingError naming the recipe key to change."""
    funcs, _ = build_rewards(rewards, **options)
    for f in funcs:
        f.prepare(list(langs))


def preflight(rewards: str | Mapping[str, float], records: Sequence[Mapping], made_by: Mapping[str, str] | None = None,
              **options: Any) -> None:
    """Before training: the training rows hold every column the rewards read (`made_by`: column -> how
    to make it, said in the error), then `load_models` for the rows' languages."""
    funcs, _ = build_rewards(rewards, **options)
    for f in funcs:
        f.check_columns(records, made_by or {})
    langs = sorted({str(r.get("lang")) for r in records if r.get("lang")})
    for f in funcs:
        f.prepare(langs)


def combine(values: Sequence[Sequence[float | None]], weights: Sequence[float]) -> list[float]:
    """The total reward per completion as TRL forms it: sum of weight × reward, None counting 0."""
    return [sum(w * v for w, v in zip(weights, row) if v is not None) for row in zip(*values)]


__all__ = ["REWARD_SETS", "REWARD_FUNCTIONS", "build_rewards", "combine", "completion_text",
           "assistant_prefix", "AccuracyReward", "FormatReward", "LanguageReward", "ConsistencyReward",
           "PivotReward", "TranslatePivotReward", "RewardOptions", "load_embedder", "load_translator", "preflight",
           "load_models", "answer_part", "DEFAULT_EMBEDDING_MODEL", "EMBEDDING_LANGUAGES"]
