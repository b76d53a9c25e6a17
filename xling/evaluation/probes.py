"""The mechanism probes of "Beyond English-Centric Training": what RL (or SFT) changed inside a model.

- perplexity of the problems per language: `token_nll` (per text: summed negative log-likelihood
  in nats of every token after the first, and how many) and `corpus_perplexity` =
  exp(Σ nll / Σ tokens) over a language's problems;
- self-similarity of sampled answers: `self_bleu` = the mean, over the samples of one problem, of
  sacreBLEU's sentence BLEU of each sample against the others as references (100: identical
  samples), tokenized for the language's script (`bleu_tokenize`);
- drift of final-layer hidden states: `hidden_states` (the last layer's output, after the final
  norm, mean- or last-token-pooled) for the same prompts under two models, `drift` = h_trained −
  h_base per problem, `pca` (numpy SVD) to project the drifts of every setup and language into one
  shared plane, `drift_summary` per language (mean ‖d‖, ‖d‖ relative to ‖h_base‖, mean position in
  the plane, cosine of the language's mean drift with English's).

`bootstrap_ci` gives percentile intervals over problems. The metric functions are pure (numpy,
sacrebleu); the model passes import torch inside.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

# sacreBLEU tokenizer per script: Chinese has its own; Japanese and Thai are written without spaces
# and sacreBLEU's word tokenizers for them need extra packages, so they are compared by characters.
BLEU_TOKENIZE = {"Han": "zh", "Japanese": "char", "Thai": "char"}


def bleu_tokenize(lang: str) -> str:
    from xling.data.languages import get

    return BLEU_TOKENIZE.get(get(lang).script, "13a")


# -- self-similarity --------------------------------------------------------------------------------

def self_bleu(samples: Sequence[str], lang: str = "en") -> float | None:
    """Mean sentence BLEU (0–100) of each sample against the other samples; None for fewer than two.
    (sacreBLEU scores an empty sample 0, so empty answers count as dissimilar.)"""
    if len(samples) < 2:
        return None
    from sacrebleu.metrics import BLEU

    bleu = BLEU(tokenize=bleu_tokenize(lang), effective_order=True)
    scores = [bleu.sentence_score(s, [o for j, o in enumerate(samples) if j != i]).score for i, s in enumerate(samples)]
    return round(float(np.mean(scores)), 6)


# -- perplexity -------------------------------------------------------------------------------------

def corpus_perplexity(nll: Sequence[tuple[float, int]]) -> float | None:
    """exp(total negative log-likelihood / total predicted tokens) of (nll, tokens) pairs; None without tokens."""
    tokens = sum(n for _, n in nll)
    if tokens == 0:
        return None
    return float(math.exp(sum(s for s, _ in nll) / tokens))


def _batches(texts: Sequence[str], tokenizer: Any, batch_size: int, max_length: int, special: bool):
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    for start in range(0, len(texts), batch_size):
        ids = [tokenizer(t, add_special_tokens=special, truncation=True, max_length=max_length)["input_ids"]
               for t in texts[start:start + batch_size]]
        width = max(1, max(len(x) for x in ids))
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):  # right padding: a causal model's real positions are unaffected
            input_ids[row, :len(x)] = torch.tensor(x, dtype=torch.long)
            mask[row, :len(x)] = 1
        yield input_ids, mask


def _device(net: Any):
    return next(net.parameters()).device


def token_nll(net: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 8,
              max_length: int = 1024) -> list[tuple[float, int]]:
    """Per text: (Σ −log p(token | the tokens before it) in nats over its tokens after the first, their number).

    Texts are tokenized as the tokenizer does by default (with a BOS where it adds one, so that the
    first word is then predicted too) and cut at `max_length` tokens.
    """
    import torch

    out: list[tuple[float, int]] = []
    device = _device(net)
    for input_ids, mask in _batches(texts, tokenizer, batch_size, max_length, special=True):
        input_ids, mask = input_ids.to(device), mask.to(device)
        with torch.inference_mode():
            logits = net(input_ids=input_ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        target = input_ids[:, 1:]
        picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        keep = mask[:, 1:].bool()
        for row in range(input_ids.shape[0]):
            out.append((float(-picked[row][keep[row]].sum()), int(keep[row].sum())))
    return out


# -- hidden states and drift ------------------------------------------------------------------------

def _body(net: Any):
    """The transformer without its LM head (for a PEFT model: with the adapter applied)."""
    base = net.get_base_model() if hasattr(net, "get_base_model") else net
    return getattr(base, getattr(base, "base_model_prefix", "model"), base)


def hidden_states(net: Any, tokenizer: Any, texts: Sequence[str], *, pool: str = "mean", batch_size: int = 8,
                  max_length: int = 1024) -> np.ndarray:
    """The final layer's output (after the final norm) per text, averaged over its tokens (`pool=mean`)
    or at its last token (`pool=last`): an array (texts, hidden size), float32. Texts are prompts
    already rendered, so no special tokens are added."""
    import torch

    if pool not in ("mean", "last"):
        raise ValueError(f"pool must be 'mean' or 'last', not {pool!r}")
    body = _body(net)
    device = _device(net)
    rows: list[np.ndarray] = []
    for input_ids, mask in _batches(texts, tokenizer, batch_size, max_length, special=False):
        input_ids, mask = input_ids.to(device), mask.to(device)
        with torch.inference_mode():
            h = body(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
        if pool == "mean":
            m = mask.unsqueeze(-1).float()
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        else:
            last = (mask.sum(1) - 1).clamp(min=0)
            pooled = h[torch.arange(h.shape[0], device=h.device), last]
        rows.append(pooled.cpu().numpy().astype(np.float32))
    width = rows[0].shape[1] if rows else 0
    return np.concatenate(rows) if rows else np.zeros((0, width), dtype=np.float32)


def drift(trained: np.ndarray, base: np.ndarray) -> np.ndarray:
    """h_trained − h_base, row by row (the same problems in the same order)."""
    trained, base = np.asarray(trained, dtype=np.float64), np.asarray(base, dtype=np.float64)
    if trained.shape != base.shape:
        raise ValueError(f"hidden states of different shapes: {trained.shape} vs {base.shape}")
    return trained - base


def pca(x: np.ndarray, k: int = 2, center: bool = True) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
    """(projections (n, k), components (k, d), explained ratios) of the rows of `x`, by SVD.

    `center=True`: classic PCA (ratios of variance). `center=False`: the rows are projected as they
    are, so that a zero row stays at the origin (for drifts: "no change" is the origin) and the ratios
    are shares of Σ‖row‖². Each component's sign makes its largest loading positive (deterministic).
    With nothing to explain (e.g. every drift zero) the projections are zero and the ratios None.
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    centered = x - x.mean(axis=0) if n and center else x
    comps = np.zeros((k, d))
    ratios: list[float | None] = [None] * k
    if n and d:
        _, s, vt = np.linalg.svd(centered, full_matrices=False)
        total = float((s ** 2).sum())
        for i in range(min(k, vt.shape[0])):
            v = vt[i]
            comps[i] = v if v[np.argmax(np.abs(v))] >= 0 else -v
            ratios[i] = float(s[i] ** 2 / total) if total > 0 else None
    proj = centered @ comps.T if n else np.zeros((0, k))
    if all(r is None for r in ratios):
        proj = np.zeros((n, k))
    return proj, comps, ratios


def _cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return None
    return float(a @ b / (na * nb))


def drift_summary(d: np.ndarray, base: np.ndarray, proj: np.ndarray, english_mean: np.ndarray | None) -> dict:
    """One language of one setup: mean ‖d‖, mean ‖d‖/‖h_base‖, mean PCA coordinates, and the cosine of
    its mean drift with English's mean drift (None where either is zero or English is not probed)."""
    norms = np.linalg.norm(d, axis=1)
    base_norms = np.linalg.norm(np.asarray(base, dtype=np.float64), axis=1)
    rel = np.divide(norms, base_norms, out=np.zeros_like(norms), where=base_norms > 0)
    mean = d.mean(axis=0) if len(d) else np.zeros(d.shape[1])
    return {"norm": float(norms.mean()) if len(norms) else None,
            "relative": float(rel.mean()) if len(rel) else None,
            "pc1": float(proj[:, 0].mean()) if len(proj) else None,
            "pc2": float(proj[:, 1].mean()) if len(proj) and proj.shape[1] > 1 else None,
            "cos_with_en": _cosine(mean, english_mean) if english_mean is not None else None}


# -- intervals --------------------------------------------------------------------------------------

def bootstrap_ci(n: int, statistic: Callable[[np.ndarray], float | None], n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> list[float] | None:
    """Percentile interval of `statistic(indices)` over `n_boot` resamples of n items with replacement;
    None for fewer than two items or when the statistic is undefined in more than half the resamples."""
    if n < 2 or n_boot < 2:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        v = statistic(rng.integers(0, n, n))
        if v is not None and math.isfinite(v):
            values.append(v)
    if len(values) * 2 <= n_boot:
        return None
    alpha = (1 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return [float(lo), float(hi)]


def mean_ci(values: Sequence[float], **kwargs: Any) -> list[float] | None:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return bootstrap_ci(len(arr), lambda idx: float(arr[idx].mean()), **kwargs)


def perplexity_ci(nll: Sequence[tuple[float, int]], **kwargs: Any) -> list[float] | None:
    pairs = list(nll)
    return bootstrap_ci(len(pairs), lambda idx: corpus_perplexity([pairs[i] for i in idx]), **kwargs)


def nested(table: Mapping[str, Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """{model: {lang: cell[key]}} from {model: {lang: cell}}."""
    return {m: {lang: (cell or {}).get(key) for lang, cell in per.items()} for m, per in table.items()}
