"""The semantic rewards of PB-RLSVR: an answer compared with its English reference by a sentence embedding.

In: completions, the ``reference`` column (written by the pivot stage, `xling.derived.pivot`) and, for
``pivot_translate``, a translator into English. Out: per completion the cosine similarity, clipped to
[0, 1], between its answer part (`answer_part`) and the reference under a multilingual embedding model
(`load_embedder`; default LaBSE, all 11 languages; `EMBEDDING_LANGUAGES` says which languages a known
model covers, and a model is refused for training data in a language it lacks); None where the
reference is missing. `load_translator` gives the translate-then-compare variant its translator.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from xling.common.errors import XlingError
from xling.train.reward_base import Reward, _column, _langs

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

