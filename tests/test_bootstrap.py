"""Bootstrap intervals pinned to the last digit: a whole-study case and a 25,000-item case.

The expected intervals were computed by the gather-per-cell bootstrap that xling used before
the bootstrap from draw counts (the reference kept in `xling.perf.analysis`); any change of draws,
grouping, ordering or arithmetic shows here as a different float.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from xling.analysis import metrics as M
from xling.perf.analysis import ReferenceItemScores, reference_bootstrap


def study_records():
    """3 models, 4 benchmarks: parallel binary items, 16-sample AIME items, languages holding
    different items, a model missing items (NaN gaps), 3-sample items (scores k/3), an all-zero
    base cell; records shuffled so that first appearances differ per benchmark."""
    rng = np.random.default_rng(2024)
    lifts = {"base": 0.0, "rl1": 0.08, "rl2": 0.05}
    recs = []
    for m, lift in lifts.items():
        for lang, p in (("en", .7), ("de", .55), ("sw", .3), ("zh", .5)):
            recs += [{"model": m, "benchmark": "mgsm", "lang": lang, "id": f"mgsm-{i}",
                      "correct": bool(rng.random() < p + lift)} for i in range(60)]
        for lang, p in (("en", .2), ("de", .1), ("sw", .04)):
            recs += [{"model": m, "benchmark": "aime24", "lang": lang, "id": f"aime-{i}",
                      "score": float(rng.random() < p + lift)} for i in range(30) for _ in range(16)]
        en = [i for i in range(80) if not (m == "rl2" and i % 8 == 3)]
        recs += [{"model": m, "benchmark": "math500", "lang": "en", "id": f"m{i}",
                  "correct": bool(rng.random() < .6 + lift)} for i in en]
        recs += [{"model": m, "benchmark": "math500", "lang": "de", "id": f"m{i}",
                  "correct": bool(rng.random() < .45 + lift)} for i in range(50, 100)]
        for lang, p in (("en", .35), ("de", 0.0 if m == "base" else .2)):
            recs += [{"model": m, "benchmark": "gpqa", "lang": lang, "id": f"g{i}",
                      "score": float(rng.random() < p + (lift if p else 0))} for i in range(40) for _ in range(3)]
    order = rng.permutation(len(recs))
    return [recs[i] for i in order]


def study_statistic(acc):
    out = {"acc": acc}
    for m in ("rl1", "rl2"):
        per = {}
        for b in acc["base"]:
            gains = M.relative_gains(acc[m][b], acc["base"][b])
            ti = M.transferability(gains, ["en"])
            per[b] = {"gain": gains, "ti": ti, "mti": M.mti(ti), "gen": M.gen(acc[m][b], acc["base"][b])}
        out[m] = per
    return out


def large_records(n=25_000):
    rng = np.random.default_rng(25)
    recs = []
    for m, lift in (("base", 0.0), ("rl", 0.04)):
        for lang, p in (("en", .75), ("de", .6), ("sw", .35)):
            hits = rng.random(n) < p + lift
            recs += [{"model": m, "benchmark": "math500", "lang": lang, "id": f"q{i}", "correct": bool(h)}
                     for i, h in enumerate(hits)]
    return recs


def large_statistic(acc):
    gains = M.relative_gains(acc["rl"]["math500"], acc["base"]["math500"])
    ti = M.transferability(gains, ["en"])
    return {"acc": acc, "gain": gains, "ti": ti, "mti": M.mti(ti), "gen": M.gen(acc["rl"]["math500"], acc["base"]["math500"])}


def _paths(tree, path=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, path + (k,))
    else:
        yield path


STUDY_CI = {'acc': {'base': {'aime24': {'sw': [2.598958333333335, 5.734374999999995],
                                 'en': [15.416666666666668, 23.02604166666666],
                                 'de': [8.125, 12.916666666666668]},
                      'mgsm': {'zh': [28.333333333333332, 51.66666666666667],
                               'de': [55.00000000000001, 76.66666666666667],
                               'sw': [21.666666666666668, 50.0],
                               'en': [69.12500000000001, 89.2083333333333]},
                      'math500': {'en': [51.24999999999999, 72.5], 'de': [32.0, 59.049999999999955]},
                      'gpqa': {'en': [29.166666666666668, 49.60416666666664], 'de': [0.0, 0.0]}},
             'rl2': {'aime24': {'sw': [7.083333333333333, 11.666666666666666],
                                'de': [13.750000000000002, 20.625],
                                'en': [19.473958333333336, 28.958333333333336]},
                     'mgsm': {'de': [53.333333333333336, 75.0],
                              'sw': [20.0, 41.66666666666667],
                              'zh': [42.45833333333335, 66.66666666666666],
                              'en': [65.79166666666667, 88.33333333333333]},
                     'math500': {'en': [54.285714285714285, 75.71428571428571], 'de': [40.95000000000002, 68.0]},
                     'gpqa': {'en': [40.0, 54.166666666666664], 'de': [18.333333333333332, 31.270833333333307]}},
             'rl1': {'aime24': {'en': [24.364583333333336, 34.276041666666664],
                                'sw': [8.958333333333334, 14.484374999999995],
                                'de': [16.875, 23.333333333333332]},
                     'mgsm': {'en': [76.66666666666667, 95.0],
                              'de': [51.66666666666667, 75.0],
                              'sw': [30.0, 55.874999999999964],
                              'zh': [50.0, 75.0]},
                     'math500': {'en': [62.5, 81.25], 'de': [42.0, 71.04999999999995]},
                     'gpqa': {'de': [23.333333333333332, 38.33333333333333],
                              'en': [30.83333333333333, 48.33333333333333]}}},
     'rl1': {'aime24': {'gain': {'sw': [0.9434090909090912, 3.4927197802197743],
                                 'en': [0.18132142857142866, 1.034520760929211],
                                 'de': [0.382471264367816, 1.6896929824561393]},
                        'ti': {'sw': [1.2394507174919183, 11.833650749411612],
                               'de': [0.552156740697577, 6.422905982905973]},
                        'mti': [1.158718947817758, 8.467300104633143],
                        'gen': [7.146116815013178, 13.569846213018717]},
             'mgsm': {'gain': {'zh': [0.08709975369458164, 1.3333333333333335],
                               'de': [-0.24390243902439013, 0.19444444444444453],
                               'sw': [-0.2631481481481482, 0.9720588235294105],
                               'en': [-0.07407407407407397, 0.27713662790697663]},
                      'ti': {'zh': [-24.781249999999936, 35.93478260869581],
                             'de': [-5.781250000000011, 6.269821187584336],
                             'sw': [-15.749999999999945, 22.934210526315738]},
                      'mti': [-10.821267558366602, 19.831797163804453],
                      'gen': [-7.959963914927149, 34.07093477241502]},
             'math500': {'gain': {'en': [-0.05130771478667445, 0.4485200845665958],
                                  'de': [-0.18643433179723498, 0.8788602941176469]},
                         'ti': {'de': [-6.90067934782607, 10.05617647058824]},
                         'mti': [-6.90067934782607, 10.05617647058824],
                         'gen': [-3.4935736677115767, 44.03406562847606]},
             'gpqa': {'gain': {'en': [-0.28443396226415096, 0.4076465201465198], 'de': None},
                      'ti': {'de': None},
                      'mti': None,
                      'gen': [3.6688988095238106, 25.99411525974025]}},
     'rl2': {'aime24': {'gain': {'sw': [0.5320909090909092, 2.5764102564102545],
                                 'en': [-0.08486238532110077, 0.756592169092169],
                                 'de': [0.21934374999999987, 1.1968899521531096]},
                        'ti': {'sw': [-15.106259968102046, 34.5364285714286],
                               'de': [-8.065592986206319, 22.208581992734736]},
                        'mti': [-11.009612225572042, 29.172364400305597],
                        'gen': [3.014981859553163, 9.000502292974284]},
             'mgsm': {'gain': {'zh': [-0.032822580645161296, 0.9473684210526319],
                               'de': [-0.24434523809523792, 0.20588235294117643],
                               'sw': [-0.5097222222222221, 0.4500000000000003],
                               'en': [-0.17485859728506786, 0.12085755813953465]},
                      'ti': {'zh': [-22.954605263157823, 25.695113636363565],
                             'de': [-5.848577235772342, 7.184416508538857],
                             'sw': [-15.235117056856136, 16.46512096774201]},
                      'mti': [-7.525263632053103, 10.043582995327444],
                      'gen': [-29.879435266630367, 15.389456942910897]},
             'math500': {'gain': {'en': [-0.18248196248196236, 0.41586705976949795],
                                  'de': [-0.1515151515151514, 0.6284539473684209]},
                         'ti': {'de': [-16.647134387351823, 30.70615942028955]},
                         'mti': [-16.647134387351823, 30.70615942028955],
                         'gen': [-14.352002164502148, 33.9728817072567]},
             'gpqa': {'gain': {'en': [-0.1251515151515151, 0.6494871794871792], 'de': None},
                      'ti': {'de': None},
                      'mti': None,
                      'gen': [5.34375, 27.299949290060848]}}}

LARGE_CI = {'acc': {'base': {'math500': {'en': [74.7118, 75.6763],
                                  'de': [60.05100000000001, 61.2806],
                                  'sw': [34.8071, 35.961]}},
             'rl': {'math500': {'en': [78.41050000000001, 79.3602], 'de': [63.3559, 64.4534], 'sw': [38.4437, 39.58]}}},
     'gain': {'en': [0.04069819414083312, 0.05898930790216189],
              'de': [0.04174614208959461, 0.06734601349330646],
              'sw': [0.07640615730829795, 0.12705731683496505]},
     'ti': {'de': [0.794715494707092, 1.446893200882003], 'sw': [1.529426479181085, 2.786413164151807]},
     'mti': [1.1976914535363095, 2.0579162170901326],
     'gen': [8.287894424078923, 10.999912827901122]}


def test_study_intervals_are_pinned():
    ci = M.bootstrap(M.ItemScores.from_records(study_records()), study_statistic, n_boot=300, seed=3)
    assert ci == STUDY_CI
    assert list(_paths(ci)) == list(_paths(STUDY_CI))  # the same order too


def test_25000_item_intervals_are_pinned():
    ci = M.bootstrap(M.ItemScores.from_records(large_records()), large_statistic, n_boot=200, seed=0)
    assert ci == LARGE_CI
    assert list(_paths(ci)) == list(_paths(LARGE_CI))


# -- the bootstrap from draw counts against the reference, on cases drawn at random ------------


def _random_case(seed: int):
    """Records of 2-3 models on 1-3 benchmarks: parallel or not, gaps, several samples per item
    (1, 2, 3 or 16), 0/1 or k/n scores, in shuffled order; and a statistic over all of it."""
    rng = np.random.default_rng(seed)
    models = ["base", "rl", "sft"][: rng.integers(2, 4)]
    recs = []
    for b in range(rng.integers(1, 4)):
        bench = f"b{b}"
        langs = ["en", "de", "sw", "ja"][: rng.integers(1, 5)]
        n = int(rng.integers(1, 40))
        samples = int(rng.choice([1, 1, 2, 3, 16]))
        for m in models:
            for lang in langs:
                ids = [i for i in range(n) if rng.random() > (0.2 if rng.random() < 0.3 else 0)] or [0]
                offset = int(rng.integers(0, 5)) if rng.random() < 0.3 else 0  # not parallel
                p = rng.random()
                for i in ids:
                    for _ in range(samples):
                        recs.append({"model": m, "benchmark": bench, "lang": lang, "id": f"{bench}-{i + offset}",
                                     "score": float(rng.random() < p)})
    recs = [recs[i] for i in rng.permutation(len(recs))]

    def statistic(acc):
        out = {"acc": acc}
        for m in models[1:]:
            out[m] = {b: {"gain": M.relative_gains(acc[m][b], acc["base"][b]),
                          "gen": M.gen(acc[m][b], acc["base"][b])} for b in acc["base"] if b in acc[m]}
        return out

    return recs, statistic


@pytest.mark.parametrize("seed", range(12))
def test_bootstrap_matches_the_reference_to_the_last_digit(seed, monkeypatch):
    recs, statistic = _random_case(seed)
    expected = reference_bootstrap(ReferenceItemScores.from_records(recs), statistic, n_boot=60, seed=seed)
    monkeypatch.setattr(M, "DRAWS_PER_BLOCK", 1 + seed * 7)  # many blocks of replicates, and one row
    if seed % 2:  # the item table built by sorting keys rather than by tables over every possible key
        monkeypatch.setattr(M, "_dense", lambda size, n: False)
    items = M.ItemScores.from_records(recs)
    ref_items = ReferenceItemScores.from_records(recs)
    assert items.ids == ref_items.ids
    assert list(items.scores) == list(ref_items.scores)
    for b, per in ref_items.scores.items():
        assert list(items.scores[b]) == list(per)
        for key, arr in per.items():
            np.testing.assert_array_equal(items.scores[b][key], arr)
    ci = M.bootstrap(items, statistic, n_boot=60, seed=seed)
    assert ci == expected
    assert list(_paths(ci)) == list(_paths(expected))


def test_counted_and_gathered_replicates_agree_where_sums_are_exact(monkeypatch):
    items = M.ItemScores.from_records(study_records())
    layout, counted = items.replicates(200, np.random.default_rng(1))
    monkeypatch.setattr(M, "_sums_are_exact", lambda scores, n: False)
    layout2, gathered = items.replicates(200, np.random.default_rng(1))
    assert layout == layout2
    np.testing.assert_array_equal(counted, gathered)


@pytest.mark.parametrize(
    "scores,n,exact",
    [
        ([0.0, 1.0, 1.0], 3, True),
        ([k / 16 for k in range(17)], 30, True),  # AIME's 16 samples
        ([0.0, 1 / 3, 2 / 3], 3, False),  # 3 samples: k/3 is not a binary fraction
        ([0.5, float("nan")], 2, False),
        ([0.5, float("inf")], 2, False),
        ([-0.0, 1.0], 2, False),  # the sign of a sum of zeros depends on the order
        ([0.0, 0.0], 5, True),
        ([2.0**-30, 1.0], 2**20, True),  # sums up to 2**20 in steps of 2**-30: 50 bits
        ([2.0**-40, 1.0], 2**20, False),  # steps of 2**-40: 60 bits
        ([0.5 + 2.0**-50, 1.0], 2**10, False),  # needs 50 bits below the point; n leaves 43
    ],
)
def test_sums_are_exact(scores, n, exact):
    assert M._sums_are_exact(np.array(scores), n) is exact


def test_the_statistic_sees_each_replicate_once_and_a_scalar_statistic_gets_one_interval():
    items = M.ItemScores.from_records(large_records(300))
    seen = []

    def statistic(acc):
        seen.append(acc["rl"]["math500"]["en"])
        return acc["rl"]["math500"]["en"] - acc["base"]["math500"]["en"]

    ci = M.bootstrap(items, statistic, n_boot=50, seed=4)
    assert len(seen) == 50 and len(set(seen)) > 10
    assert ci == reference_bootstrap(ReferenceItemScores.from_records(large_records(300)), statistic, n_boot=50,
                                     seed=4)


def test_analysis_benchmark_compares_with_the_reference_and_says_what_it_skipped(capsys, tmp_path):
    from xling.perf import analysis

    # 30 items × 6 cells: the reference needs ~1.4e-4 GB at 20 replicates, ~2.7e-4 GB at 300
    argv = ["--sizes", "30", "--boots", "20,300", "--langs", "3", "--ref-max-gb", "0.0002",
            "--json", str(tmp_path / "figures.json")]
    assert analysis.main(argv) == 0
    out = capsys.readouterr().out
    figures = json.loads((tmp_path / "figures.json").read_text())["cases"]
    assert [f["replicates"] for f in figures] == [20, 300]
    ran, skipped = figures
    assert ran["same"] == "yes" and ran["ref"]["wall"] > 0 and ran["new"]["peak_mb"] > 0
    assert 0 <= ran["new"]["statistic"] <= ran["new"]["bootstrap"] <= ran["new"]["wall"]
    assert skipped["ref"] == {"skipped": "needs about 0.0 GB"} and skipped["same"] == "—"
    assert "30 × 300: reference skipped, it needs about 0.0 GB (> --ref-max-gb 0.0002)" in out
    assert "speed-up" in out and "load average" in out
