"""Transfer metrics as docs/protocol.md#metrics defines them: pure functions over accuracies, plus bootstrap intervals.

Accuracies are percentages (0–100). A relative gain over a zero base accuracy is undefined:
it is None, shown as "None", and left out of every mean (never inf or NaN).
"""

from __future__ import annotations

import contextlib
import math
from array import array
from collections import abc
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
        The records are read once into columns (`from_columns`); none is kept.
        """
        records = records if isinstance(records, Sequence) else list(records)
        columns, names = [], []
        for key in ("model", "benchmark", "lang", "id"):
            table: dict[str, int] = {}
            columns.append(np.fromiter((table.setdefault(str(r[key]), len(table)) for r in records), np.int64,
                                       count=len(records)))
            names.append(list(table))
        score = np.fromiter((float(r["score"] if "score" in r else r["correct"]) for r in records), np.float64,
                            count=len(records))
        return cls.from_columns(*columns, score, *names)

    @classmethod
    def from_columns(cls, model: np.ndarray, benchmark: np.ndarray, lang: np.ndarray, item: np.ndarray,
                     score: np.ndarray, models: Sequence[str], benchmarks: Sequence[str], langs: Sequence[str],
                     ids: Sequence[str]) -> "ItemScores":
        """The same table from columns: one entry per record, codes into the four name lists.

        Benchmarks, their ids and their (model, lang) cells keep the order in which the records
        first name them, and an item's score is the mean of its records in record order, exactly
        as `from_records` would have computed it from the records themselves.
        """
        model, benchmark, lang, item = (np.asarray(c, dtype=np.int64) for c in (model, benchmark, lang, item))
        score = np.asarray(score, dtype=np.float64)
        out = cls()
        if not len(score):
            return out
        n_ids, n_models, n_langs = len(ids), len(models), len(langs)
        n_bench = len(benchmarks)
        _, bench_order = _first_seen(benchmark, n_bench)
        cell, cell_keys = _first_seen((benchmark * n_models + model) * n_langs + lang, n_bench * n_models * n_langs)
        slot, slot_keys = _first_seen(benchmark * n_ids + item, n_bench * n_ids)  # an item of a benchmark
        slot_bench = slot_keys // n_ids
        position = np.empty(len(slot_keys), dtype=np.int64)  # of an item in its benchmark's ids
        for b in bench_order.tolist():
            mine = np.flatnonzero(slot_bench == b)
            position[mine] = np.arange(len(mine))
            out.ids[benchmarks[b]] = [ids[i] for i in (slot_keys[mine] % n_ids).tolist()]
            out.scores[benchmarks[b]] = {}
        # one value per (cell, item): the sum of its records in record order over their number
        pair_key = cell * len(slot_keys) + slot
        if _dense(len(cell_keys) * len(slot_keys), len(pair_key)):
            counts = np.bincount(pair_key, minlength=len(cell_keys) * len(slot_keys))
            pair = np.flatnonzero(counts)
            means = np.bincount(pair_key, weights=score, minlength=len(counts))[pair] / counts[pair]
        else:
            pair, inverse = np.unique(pair_key, return_inverse=True)
            means = np.bincount(inverse, weights=score, minlength=len(pair)) / np.bincount(inverse, minlength=len(pair))
        pair_cell, pair_slot = pair // len(slot_keys), pair % len(slot_keys)
        bounds = np.searchsorted(pair_cell, np.arange(len(cell_keys) + 1))
        for c, key in enumerate(cell_keys.tolist()):
            b, rest = divmod(key, n_models * n_langs)
            m, lg = divmod(rest, n_langs)
            arr = np.full(len(out.ids[benchmarks[b]]), np.nan)
            arr[position[pair_slot[bounds[c]:bounds[c + 1]]]] = means[bounds[c]:bounds[c + 1]]
            out.scores[benchmarks[b]][(models[m], langs[lg])] = arr
        return out

    def accuracies(self) -> dict[str, dict[str, dict[str, float]]]:
        """model -> benchmark -> lang -> accuracy in percent, on all items."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for b, per in self.scores.items():
            for (model, lang), arr in per.items():
                out.setdefault(model, {}).setdefault(b, {})[lang] = float(np.nanmean(arr) * 100)
        return out

    def replicates(self, n_boot: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
        """(layout, accuracies): layout is model -> benchmark -> lang -> column of `accuracies`,
        an (n_boot, cells) array of resampled accuracies in percent.

        Items are drawn once per benchmark and replicate, and the same draw serves every model
        and language: the resampling is paired. Where cells hold different items (a benchmark whose
        languages are not parallel, or a model missing some items), cells are grouped by the set
        of items they hold, and each group is resampled from its own items (paired within it), so
        that no replicate leaves a cell without items.

        A replicate's draw of n items is counted per item (`numpy.bincount`), and every cell of
        the group gets its accuracy from one product of those counts with the items' scores. That
        sum is exact, and so equal to the sum of the drawn scores in any order, when the scores are
        multiples of one power of two small enough for n of them (0/1 scores, AIME's k/16); a cell
        holding other scores (k/3, off-target shares) averages the drawn scores themselves, in the
        order drawn. Either way the accuracies are those of averaging each replicate's drawn scores
        to the last digit. Draws are made a block of replicates at a time (`DRAWS_PER_BLOCK`), so
        memory grows with items + replicates, not their product.
        """
        plan = []  # per group: its cells' scores on the items they hold (items × cells)
        layout: dict[str, dict[str, dict[str, int]]] = {}
        n_cols = 0
        for b, per in self.scores.items():
            groups: dict[bytes, list[tuple[str, str]]] = {}
            for key, arr in per.items():
                groups.setdefault(np.packbits(~np.isnan(arr)).tobytes(), []).append(key)
            for keys in groups.values():
                present = np.flatnonzero(~np.isnan(per[keys[0]]))
                if not len(present):
                    continue
                for model, lang in keys:
                    layout.setdefault(model, {}).setdefault(b, {})[lang] = n_cols
                    n_cols += 1
                plan.append(np.stack([per[key][present] for key in keys], axis=1))
        _check_memory(n_boot, 8 * n_cols, f"{n_cols} accuracies")
        out = np.empty((n_boot, n_cols))
        with _blas_threads(BLAS_THREADS):
            col = 0
            for scores in plan:
                _resample(scores, rng, out[:, col:col + scores.shape[1]])
                col += scores.shape[1]
        return layout, out


def _check_memory(n_boot: int, per_replicate: int, what: str) -> None:
    """Refuse, before allocating, replicates that the available memory cannot hold (saying the estimate)."""
    from xling.common.checks import available_memory, size

    need, free = n_boot * per_replicate, available_memory()
    if free is not None and need > free:
        from xling.common.errors import XlingError

        raise XlingError(f"n_boot={n_boot}: the bootstrap needs about {size(need)} of memory ({what} per replicate), "
                         f"more than the {size(free)} available; lower n_boot (1000 gives 95% intervals)")


def _resample(scores: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill out (n_boot × cells) with the accuracies of n_boot draws of n items from scores (n × cells)."""
    n_boot, (n, cells) = len(out), scores.shape
    exact = [j for j in range(cells) if _sums_are_exact(scores[:, j], n)]
    other = [j for j in range(cells) if j not in exact]
    exact_scores = np.ascontiguousarray(scores[:, exact])
    rows = max(1, min(n_boot, DRAWS_PER_BLOCK // n))
    counts = np.empty((rows, n)) if exact else None
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        draws = rng.integers(0, n, size=(stop - start, n))  # the same draws, in the same order, as one call
        for j in other:  # sums that depend on their order: averaged as drawn
            out[start:stop, j] = scores[:, j][draws].mean(axis=1) * 100
        if exact:
            for r, row in enumerate(draws):  # row by row: each count vector stays in cache
                counts[r] = np.bincount(row, minlength=n)
            out[start:stop, exact] = counts[:stop - start] @ exact_scores / n * 100


DRAWS_PER_BLOCK = 1 << 22  # item draws held at once (32 MiB of int64 indices, and as much of counts)
BLAS_THREADS: int | None = 1  # for the products: thin (a block of replicates × items × cells), they gain little
# from OpenBLAS's threads, and on a busy machine those spin and lose a lot; None: leave BLAS as it is


def _blas_threads(n: int | None):
    """A context in which BLAS uses at most n threads (threadpoolctl; without it, or with None, as is)."""
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def _dense(size: int, n: int) -> bool:
    """Whether tables over every possible key (0 ≤ key < size) are small enough for n keys."""
    return size <= max(1 << 20, 4 * n)


def _first_seen(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes numbering the distinct keys (0 ≤ key < size) in the order of their first occurrence,
    and those keys."""
    if _dense(size, len(keys)):  # no sort: the first position of every possible key
        first = np.full(size, len(keys), dtype=np.int64)
        np.minimum.at(first, keys, np.arange(len(keys)))
        seen = np.flatnonzero(first < len(keys))
        order = seen[np.argsort(first[seen], kind="stable")]
        rank = np.empty(size, dtype=np.int64)
        rank[order] = np.arange(len(order))
        return rank[keys], order
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inverse], uniq[order]


def _sums_are_exact(scores: np.ndarray, n: int) -> bool:
    """Whether every sum of n of these scores (with repetition) is exact in float64, in any order.

    It is when the scores are finite multiples of 2**-p with n · max|score| · 2**p < 2**53: every
    partial sum is then such a multiple below 2**53 · 2**-p. Negative zeros are left out (their sum
    is -0.0 or 0.0 depending on the order).
    """
    if not np.isfinite(scores).all() or np.any((scores == 0) & np.signbit(scores)):
        return False
    top = float(np.abs(scores).max(initial=0.0)) * n
    if top == 0:
        return True
    p = 53 - math.frexp(top)[1]  # top < 2**e, so top · 2**p < 2**53
    if p < 0:
        return False
    scaled = np.ldexp(scores, p)
    return bool(np.all(scaled == np.floor(scaled)))


def _flatten(obj: Mapping, path: tuple, out: list) -> None:
    """Append (path, leaf) for every leaf of a nested mapping, in order."""
    for k, v in obj.items():
        kind = type(v)
        if kind is dict or (kind is not float and v is not None and isinstance(v, abc.Mapping)):
            _flatten(v, path + (k,), out)
        else:
            out.append((path + (k,), v))


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
    The replicates' accuracies come from `ItemScores.replicates`; `statistic` is called once per
    replicate.
    """
    if n_boot < 2:
        raise ValueError("n_boot must be at least 2")
    rng = np.random.default_rng(seed)
    layout, reps = items.replicates(n_boot, rng)
    collected: dict[tuple, array] = {}
    block = max(1, (1 << 20) // max(1, reps.shape[1]))  # replicates turned into Python floats at once
    for first in range(0, n_boot, block):
        for row in reps[first:first + block].tolist():
            acc = {m: {b: {lang: row[j] for lang, j in per_l.items() if row[j] == row[j]} for b, per_l in per_b.items()}
                   for m, per_b in layout.items()}
            value = statistic(acc)
            leaves: list = []
            if isinstance(value, abc.Mapping):
                _flatten(value, (), leaves)
            else:
                leaves.append(((), value))
            for path, value in leaves:
                bucket = collected.get(path)
                if bucket is None:
                    bucket = collected[path] = array("d")
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
