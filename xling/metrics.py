"""Transfer metrics as SPEC §2 defines them: pure functions over accuracies, plus bootstrap intervals.

Accuracies are percentages (0–100). A relative gain over a zero base accuracy is undefined:
it is None, shown as "None", and left out of every mean (never inf or NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

Accuracies = Mapping[str, float]  # language -> accuracy in percent

IN_DOMAIN = ("math500", "mgsm", "msvamp")
OUT_OF_DOMAIN = ("aime24", "aime25", "gpqa")


def mean_defined(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are defined; None if there are none."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def relative_gain(trained: float, base: float) -> float | None:
    """ΔR = (S_trained − S_base) / S_base; None when S_base = 0."""
    if base == 0:
        return None
    return (trained - base) / base


def relative_gains(trained: Accuracies, base: Accuracies) -> dict[str, float | None]:
    """ΔR per language, for the languages both models were evaluated in (base order)."""
    return {lang: relative_gain(trained[lang], base[lang]) for lang in base if lang in trained}


def training_gain(gains: Mapping[str, float | None], train_langs: Sequence[str]) -> float | None:
    """ΔR(b, L_train): the mean relative gain over the training languages."""
    return mean_defined(gains.get(lang) for lang in train_langs)


def transferability(gains: Mapping[str, float | None], train_langs: Sequence[str]) -> dict[str, float | None]:
    """TI(l) = ΔR(l) / ΔR(L_train) for every evaluated language not trained on.

    TI is None where ΔR(l) is undefined, and for every language when the training-set gain is
    undefined or zero.
    """
    denom = training_gain(gains, train_langs)
    out: dict[str, float | None] = {}
    for lang, gain in gains.items():
        if lang in train_langs:
            continue
        out[lang] = None if gain is None or denom is None or denom == 0 else gain / denom
    return out


MTI_POLICIES = ("defined", "paper")


def mti(ti: Mapping[str, float | None], policy: str = "defined") -> float | None:
    """Multilingual transferability index of one benchmark: the mean of the defined TIs.

    policy `defined` (xling's default): the mean over every unseen language whose TI is defined,
    None only when none is. policy `paper`: the paper's convention — when TI is undefined in most
    unseen languages (more than half: their base accuracy is 0, or the training-set gain is), the
    benchmark's MTI is None ("None" in its tables) and it drops out of the model's average.
    """
    if policy not in MTI_POLICIES:
        raise ValueError(f"unknown mti_policy '{policy}'; choose one of: {', '.join(MTI_POLICIES)}")
    values = list(ti.values())
    if policy == "paper" and 2 * sum(v is None for v in values) > len(values):
        return None
    return mean_defined(values)


def gen(trained: Accuracies, base: Accuracies) -> float | None:
    """Gen = 100 · mean_l (Acc_t − Acc_b) / (1 − Acc_b), accuracies as fractions.

    Languages whose base accuracy is 100% are undefined and skipped.
    """
    terms = []
    for lang, b in base.items():
        if lang not in trained or b >= 100:
            continue
        terms.append((trained[lang] - b) / (100 - b))
    return 100 * sum(terms) / len(terms) if terms else None


def off_target_rate(detected: Sequence[str | None], requested: Sequence[str]) -> float | None:
    """Percent of answers whose detected language is not the requested one.

    Answers whose language could not be determined (None) are left out of the denominator.
    """
    if len(detected) != len(requested):
        raise ValueError("detected and requested languages differ in length")
    judged = [(d, r) for d, r in zip(detected, requested) if d is not None]
    if not judged:
        return None
    return 100 * sum(d != r for d, r in judged) / len(judged)


def first_parallel_leap(by_x: Mapping[int, float]) -> float:
    """metric(X=2) − metric(X=1): what the first parallel language adds to English alone."""
    return by_x[2] - by_x[1]


def generalization_gap(alpha: float, english_only: float) -> float:
    """Monolingual Generalization Gap: f(1) − metric(X=1) = α − the English-only value."""
    return alpha - english_only


def benchmark_transfer(trained: Accuracies, base: Accuracies, train_langs: Sequence[str],
                       mti_policy: str = "defined") -> dict:
    """Gains, training-set gain, TI, MTI (under `mti_policy`, see `mti`) and Gen of one benchmark."""
    gains = relative_gains(trained, base)
    ti = transferability(gains, train_langs)
    return {
        "gain": gains,
        "train_gain": training_gain(gains, train_langs),
        "ti": ti,
        "mti": mti(ti, mti_policy),
        "gen": gen(trained, base),
    }


def mti_summary(
    per_benchmark: Mapping[str, float | None],
    in_domain: Iterable[str] = IN_DOMAIN,
    out_of_domain: Iterable[str] = OUT_OF_DOMAIN,
) -> dict[str, float | None]:
    """The model's MTI (mean of per-benchmark MTIs) and its in-domain / out-of-domain means."""
    in_domain, out_of_domain = set(in_domain), set(out_of_domain)
    return {
        "avg": mean_defined(per_benchmark.values()),
        "id": mean_defined(v for b, v in per_benchmark.items() if b in in_domain),
        "ood": mean_defined(v for b, v in per_benchmark.items() if b in out_of_domain),
    }


def transfer_metrics(
    trained: Mapping[str, Accuracies],
    base: Mapping[str, Accuracies],
    train_langs: Sequence[str],
    in_domain: Iterable[str] = IN_DOMAIN,
    out_of_domain: Iterable[str] = OUT_OF_DOMAIN,
    mti_policy: str = "defined",
) -> dict:
    """All transfer metrics for benchmark -> language -> accuracy mappings of two models.

    Returns {"mti": {b…, avg, id, ood}, "gen": {b…}, "ti": {b: {l…}}, "gain": {b: {l…}},
    "train_gain": {b…}}. `mti_policy` (see `mti`) decides when a benchmark's MTI is None; a
    benchmark whose MTI is None is left out of avg, id and ood.
    """
    per = {b: benchmark_transfer(trained[b], base[b], train_langs, mti_policy) for b in base if b in trained}
    mtis = {b: r["mti"] for b, r in per.items()}
    return {
        "mti": {**mtis, **mti_summary(mtis, in_domain, out_of_domain)},
        "gen": {b: r["gen"] for b, r in per.items()},
        "ti": {b: r["ti"] for b, r in per.items()},
        "gain": {b: r["gain"] for b, r in per.items()},
        "train_gain": {b: r["train_gain"] for b, r in per.items()},
    }


# ---------------------------------------------------------------------------------------------
# Bootstrap intervals from per-item results
# ---------------------------------------------------------------------------------------------


@dataclass
class ItemScores:
    """Per-item scores (0–1; a mean over samples for AIME) aligned by item id per benchmark.

    `scores[benchmark][(model, lang)]` is an array over `ids[benchmark]`, NaN where that model
    has no result for that item in that language.
    """

    ids: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, dict[tuple[str, str], np.ndarray]] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> "ItemScores":
        """Records with keys model, benchmark, lang, id and score (or correct).

        Several records of one item (one per sample, e.g. AIME's 16) are averaged into its score.
        """
        cells: dict[str, dict[tuple[str, str], dict[str, list[float]]]] = {}  # b -> (model, lang) -> id
        order: dict[str, dict[str, None]] = {}
        for r in records:
            b = str(r["benchmark"])
            score = r["score"] if "score" in r else r["correct"]
            cell = cells.setdefault(b, {}).setdefault((str(r["model"]), str(r["lang"])), {})
            cell.setdefault(str(r["id"]), []).append(float(score))
            order.setdefault(b, {})[str(r["id"])] = None
        items = cls()
        for b, per in cells.items():
            ids = list(order[b])
            pos = {i: n for n, i in enumerate(ids)}
            items.ids[b] = ids
            items.scores[b] = {}
            for key, by_id in per.items():
                arr = np.full(len(ids), np.nan)
                for i, scores in by_id.items():
                    arr[pos[i]] = sum(scores) / len(scores)
                items.scores[b][key] = arr
        return items

    def accuracies(self) -> dict[str, dict[str, dict[str, float]]]:
        """model -> benchmark -> lang -> accuracy in percent, on all items."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for b, per in self.scores.items():
            for (model, lang), arr in per.items():
                out.setdefault(model, {}).setdefault(b, {})[lang] = float(np.nanmean(arr) * 100)
        return out

    def _replicates(self, n_boot: int, rng: np.random.Generator) -> dict:
        """model -> benchmark -> lang -> array of n_boot resampled accuracies (percent).

        Items are drawn once per benchmark and replicate, and the same draw serves every model
        and language: the resampling is paired. Where cells hold different items (a benchmark whose
        languages are not parallel, or a model missing some items), cells are grouped by the set
        of items they hold, and each group is resampled from its own items (paired within it), so
        that no replicate leaves a cell without items.
        """
        reps: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for b, per in self.scores.items():
            groups: dict[bytes, list[tuple[str, str]]] = {}
            for key, arr in per.items():
                groups.setdefault(np.packbits(~np.isnan(arr)).tobytes(), []).append(key)
            for keys in groups.values():
                present = np.flatnonzero(~np.isnan(per[keys[0]]))
                if not len(present):
                    continue
                idx = present[rng.integers(0, len(present), size=(n_boot, len(present)))]
                for model, lang in keys:
                    reps.setdefault(model, {}).setdefault(b, {})[lang] = per[(model, lang)][idx].mean(axis=1) * 100
        return reps


def _leaves(obj: Any, path: tuple = ()) -> Iterable[tuple[tuple, Any]]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    else:
        yield path, obj


def _set_path(tree: dict, path: tuple, value: Any) -> None:
    node = tree
    for k in path[:-1]:
        node = node.setdefault(k, {})
    node[path[-1]] = value


def bootstrap(
    items: ItemScores,
    statistic: Callable[[dict], Any],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Any:
    """Percentile bootstrap interval for every number `statistic` returns.

    `statistic` takes model -> benchmark -> lang -> accuracy (percent) and returns a number or a
    nested mapping of numbers (None allowed). The result has the same shape with [low, high] at
    each leaf; None where the statistic was undefined in more than half of the replicates.
    """
    if n_boot < 2:
        raise ValueError("n_boot must be at least 2")
    rng = np.random.default_rng(seed)
    reps = items._replicates(n_boot, rng)
    collected: dict[tuple, list[float]] = {}
    for r in range(n_boot):
        acc = {
            m: {b: {lang: float(v[r]) for lang, v in per_l.items() if not math.isnan(v[r])} for b, per_l in per_b.items()}
            for m, per_b in reps.items()
        }
        for path, value in _leaves(statistic(acc)):
            bucket = collected.setdefault(path, [])
            if value is not None and math.isfinite(value):
                bucket.append(float(value))
    alpha = (1 - level) / 2
    out: dict = {}
    for path, values in collected.items():
        ci = None
        if len(values) * 2 > n_boot:
            lo, hi = np.quantile(values, [alpha, 1 - alpha])
            ci = [float(lo), float(hi)]
        if path == ():
            return ci
        _set_path(out, path, ci)
    return out
