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
- ``pivot`` (PB-RLSVR): cosine similarity, clipped to [0, 1], between the completion's answer part
  (the text after ``</think>``, else all of it) and the English reference answer (``reference``
  column, written by the pivot stage, `xling.derived.pivot`) under a multilingual sentence-embedding
  model (default `DEFAULT_EMBEDDING_MODEL`, LaBSE: all 11 languages); None where the reference is
  missing.
- ``pivot_translate`` (PB-RLSVR, translate-then-compare): the answer part is first translated into
  English with a local model (`xling.derived.translate`'s translator, option `translator`; English answers
  are left as they are), then compared with the reference by the same cosine.

Every reward checks, before training (`preflight`), that the training rows hold the columns it
reads (naming the stage that makes a missing one) and loads the models it needs; a reward that
gives None for every completion of a batch raises rather than letting training learn nothing.

Reward sets (`REWARD_SETS`) name weighted mixes; `build_rewards(name, **options)` returns the
functions and weights for ``GRPOTrainer(reward_funcs=funcs, args=GRPOConfig(reward_weights=weights))``.
Per batch, rewards report through ``log_metric``: ``accuracy/<lang>``, ``on_target/<lang>`` and
``undetermined/<lang>`` (fractions), ``grading/unparseable_gold`` and ``grading/timeouts`` (counts).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from xling.grading import langid as L
from xling.grading.answers import KINDS, UNPARSEABLE_GOLD, TIMEOUT, Grader, boxes, default_workers
from xling.common.errors import XlingError
from xling.data.languages import LANGUAGES, unknown_language_message

# LaBSE (Feng et al., 2022): trained on translation pairs in 109 languages, all 11 of xling's among
# them, to map a sentence and its translation close together: what a cross-lingual cosine needs.
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/LaBSE"
TINY_EMBEDDER = "tiny"  # a tiny random sentence-embedding model built locally (CPU runs, tests)

# Which of xling's languages a sentence-embedding model was trained on (from the model cards). A model
# listed here is refused for training data in a language it lacks; an unlisted one is trusted.
_PARAPHRASE_50 = ("en", "es", "ru", "de", "fr", "th", "zh", "ja")  # the 50+ languages lack bn, sw, te
EMBEDDING_LANGUAGES: dict[str, tuple[str, ...]] = {
    "sentence-transformers/LaBSE": ("en", "es", "ru", "de", "fr", "bn", "th", "sw", "zh", "ja", "te"),
    "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2": _PARAPHRASE_50,
    "sentence-transformers/paraphrase-multilingual-mpnet-base-v2": _PARAPHRASE_50,
    "sentence-transformers/all-MiniLM-L6-v2": ("en",),
    "sentence-transformers/all-mpnet-base-v2": ("en",),
}

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

    def __init__(self, options: "RewardOptions"):
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


_EMBEDDERS: dict[tuple[str, str | None], Any] = {}
_TRANSLATORS: dict[tuple[str, str | None], Any] = {}


def brief(error: BaseException, limit: int = 240) -> str:
    """'Type: first line of the message', shortened at a space (a URL is never cut in two)."""
    text = (str(error).strip().splitlines() or [""])[0]
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[:cut if cut > 0 else limit].rstrip(" ,;:") + " ..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def load_embedder(model: str, device: str | None = None):
    """A sentence-transformers model by hub id or local folder ('tiny': built locally), loaded once per process
    (on the GPU where there is one, unless `device` says otherwise)."""
    key = (str(model), device)
    if key not in _EMBEDDERS:
        path = str(model)
        if path == TINY_EMBEDDER:
            from xling.models.tiny import cached_tiny_embedder

            path = str(cached_tiny_embedder())
        local = Path(path).expanduser()
        if path.startswith((".", "/", "~")) and not local.exists():
            raise XlingError(f"rewards.embedding_model={model}: no such folder; give a local sentence-transformers "
                             f"folder or a hub id (default {DEFAULT_EMBEDDING_MODEL})")
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            _EMBEDDERS[key] = SentenceTransformer(path, device=device or ("cuda" if torch.cuda.is_available()
                                                                           else "cpu"))
        except Exception as e:
            how = ("" if local.exists() else "download it once where the Hugging Face hub is reachable, or ")
            raise XlingError(f"cannot load the sentence-embedding model '{model}' ({brief(e)}); {how}give "
                             "rewards.embedding_model=PATH, a local sentence-transformers folder") from None
    return _EMBEDDERS[key]


def load_translator(model: str, device: str | None = None):
    """A translator `(texts, lang, source) -> texts` from a local instruct model (transformers), loaded once."""
    key = (str(model), device)
    if key not in _TRANSLATORS:
        from xling.derived.translate import hf_translator

        path = str(model)
        if path == "tiny":
            from xling.models.tiny import cached_tiny_model

            path = str(cached_tiny_model())
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else None
        try:
            _TRANSLATORS[key] = hf_translator(path, max_new_tokens=512, device=device)
        except Exception as e:
            raise XlingError(f"cannot load the translation model '{model}' ({brief(e)}); give "
                             "rewards.translator=PATH, a local instruct model folder or a reachable hub id") from None
    return _TRANSLATORS[key]


def answer_part(text: str) -> str:
    """What a semantic reward compares: the text after the reasoning block, else all of it."""
    return text.split("</think>", 1)[1] if "</think>" in text else text


class PivotReward(Reward):
    name = "pivot"
    reads = ("reference",)
    none_reason = "no completion of the batch has an English reference answer"

    def embedder(self):
        return load_embedder(self.options.embedding_model, self.options.embedding_device)

    def covered(self) -> tuple[str, ...] | None:
        """The languages the embedding model judges (None: not known, trusted)."""
        return EMBEDDING_LANGUAGES.get(self.options.embedding_model)

    def prepare(self, langs):
        self.check_coverage(langs)
        self.embedder()

    def check_coverage(self, langs: Sequence[str]) -> None:
        covered = self.covered()
        lacking = [c for c in langs if covered is not None and c not in covered]
        if lacking:
            them = "that language" if len(lacking) == 1 else "those languages"
            raise XlingError(f"rewards.embedding_model={self.options.embedding_model} was not trained on "
                             f"{', '.join(lacking)} (it covers {', '.join(covered or ())}), so its cosine cannot judge "
                             f"answers in {them}; use {DEFAULT_EMBEDDING_MODEL} (all 11 languages) or "
                             "rewards.set=pivot-translate")

    def english(self, answers: list[str], langs: list[str]) -> list[str]:
        return answers

    def score(self, prompts, texts, kwargs):
        n = len(texts)
        refs = _column(kwargs, "reference", n, self.name)
        idx = [i for i, r in enumerate(refs) if isinstance(r, str) and r.strip()]
        out: list[float | None] = [None] * n
        if not idx:
            return out
        langs = _langs(kwargs, n, self.name) if "lang" in self.reads else ["en"] * n
        answers = self.english([answer_part(texts[i]) for i in idx], [langs[i] for i in idx])
        model = self.embedder()
        a = model.encode(answers, normalize_embeddings=True, convert_to_numpy=True)
        b = model.encode([refs[i] for i in idx], normalize_embeddings=True, convert_to_numpy=True)
        for j, i in enumerate(idx):
            cos = float((a[j] * b[j]).sum())
            out[i] = round(min(1.0, max(0.0, cos)), 6) if math.isfinite(cos) else 0.0
        return out


class TranslatePivotReward(PivotReward):
    """Translate-then-compare: the answer is translated into English first (English answers are kept)."""

    name = "pivot_translate"
    reads = ("reference", "lang")

    def check_coverage(self, langs):
        super().check_coverage(["en"])  # it only ever compares English texts

    def translator(self):
        o = self.options
        if o.translator_fn is not None:
            return o.translator_fn
        if not o.translator:
            raise XlingError("reward 'pivot_translate' needs a translation model: give rewards.translator=MODEL "
                             "(a local instruct model folder or hub id)")
        return load_translator(o.translator, o.embedding_device)

    def prepare(self, langs):
        super().prepare(langs)
        self.translator()

    def english(self, answers, langs):
        out = list(answers)
        translate = self.translator()
        for lang in sorted(set(langs)):
            if lang == "en":
                continue
            where = [j for j, code in enumerate(langs) if code == lang]
            done = translate([answers[j] for j in where], "en", source=lang)
            if len(done) != len(where):
                raise XlingError(f"the translator returned {len(done)} texts for {len(where)} answers")
            from xling.derived.translate import clean

            for j, text in zip(where, done):
                out[j] = clean(str(text))
        return out


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
