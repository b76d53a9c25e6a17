"""Transfer metrics: exact values on hand-made numbers and on the paper's table; bootstrap intervals."""

import math

import numpy as np
import pytest

from xling.analysis import metrics as M
from xling.tasks.paper_replay import load_numbers


def test_relative_gain_exact_and_undefined():
    assert M.relative_gain(60.0, 50.0) == pytest.approx(0.2)
    assert M.relative_gain(40.0, 50.0) == pytest.approx(-0.2)
    assert M.relative_gain(10.0, 0.0) is None
    assert M.relative_gain(0.0, 0.0) is None


def test_training_gain_ti_and_mti():
    base = {"en": 50.0, "ru": 40.0, "de": 20.0, "sw": 10.0}
    trained = {"en": 60.0, "ru": 50.0, "de": 30.0, "sw": 20.0}
    gains = M.relative_gains(trained, base)
    assert gains == pytest.approx({"en": 0.2, "ru": 0.25, "de": 0.5, "sw": 1.0})
    assert M.training_gain(gains, ["en", "ru"]) == pytest.approx(0.225)
    ti = M.transferability(gains, ["en", "ru"])
    assert set(ti) == {"de", "sw"}
    assert ti["de"] == pytest.approx(0.5 / 0.225)
    assert ti["sw"] == pytest.approx(1.0 / 0.225)
    assert M.mti(ti) == pytest.approx((0.5 + 1.0) / 2 / 0.225)


def test_zero_base_accuracy_is_none_and_left_out_of_every_mean():
    base = {"en": 50.0, "te": 0.0, "sw": 10.0, "bn": 0.0}
    trained = {"en": 60.0, "te": 5.0, "sw": 15.0, "bn": 2.0}
    r = M.benchmark_transfer(trained, base, ["en", "bn"])
    assert r["gain"]["te"] is None and r["gain"]["bn"] is None
    # bn (a training language) is undefined: the training-set gain is en's alone.
    assert r["train_gain"] == pytest.approx(0.2)
    assert r["ti"] == {"te": None, "sw": pytest.approx(0.5 / 0.2)}
    assert r["mti"] == pytest.approx(2.5)
    for v in r["ti"].values():
        assert v is None or math.isfinite(v)


def test_every_gain_undefined_gives_none_not_nan():
    r = M.benchmark_transfer({"en": 5.0, "de": 3.0}, {"en": 0.0, "de": 0.0}, ["en"])
    assert r["train_gain"] is None and r["ti"] == {"de": None} and r["mti"] is None


def test_zero_training_gain_makes_ti_undefined():
    r = M.benchmark_transfer({"en": 50.0, "de": 30.0}, {"en": 50.0, "de": 20.0}, ["en"])
    assert r["train_gain"] == 0.0
    assert r["ti"] == {"de": None} and r["mti"] is None


def test_mti_summary_in_and_out_of_domain():
    per = {"math500": 2.0, "aime24": 1.0, "aime25": None, "gpqa": 4.0, "mgsm": 3.0, "other": 10.0}
    s = M.mti_summary(per)
    assert s["avg"] == pytest.approx((2 + 1 + 4 + 3 + 10) / 5)
    assert s["id"] == pytest.approx(2.5)
    assert s["ood"] == pytest.approx(2.5)
    s = M.mti_summary(per, in_domain=["other"], out_of_domain=["math500"])
    assert s["id"] == 10.0 and s["ood"] == 2.0
    assert M.mti_summary({"aime24": 1.0})["id"] is None


def test_gen_exact_and_skips_perfect_base():
    base = {"en": 50.0, "de": 20.0, "fr": 100.0}
    trained = {"en": 60.0, "de": 40.0, "fr": 90.0}
    # (0.1 / 0.5 + 0.2 / 0.8) / 2 * 100; fr (base 100%) is undefined and skipped
    assert M.gen(trained, base) == pytest.approx(22.5)
    assert M.gen({"fr": 100.0}, {"fr": 100.0}) is None


def test_off_target_rate_leaves_out_undetermined():
    assert M.off_target_rate(["en", "de", None, "fr"], ["en", "en", "en", "fr"]) == pytest.approx(100 / 3)
    assert M.off_target_rate([None], ["en"]) is None
    with pytest.raises(ValueError):
        M.off_target_rate(["en"], ["en", "de"])


def test_leap_and_gap():
    assert M.first_parallel_leap({1: 1.163, 2: 2.496, 3: 2.65}) == pytest.approx(1.333)
    assert M.generalization_gap(2.0, 1.163) == pytest.approx(0.837)


def test_transfer_metrics_shape():
    base = {"math500": {"en": 50.0, "de": 20.0}, "aime24": {"en": 10.0, "de": 0.0}}
    trained = {"math500": {"en": 60.0, "de": 30.0}, "aime24": {"en": 20.0, "de": 5.0}}
    r = M.transfer_metrics(trained, base, ["en"])
    assert r["mti"]["math500"] == pytest.approx(0.5 / 0.2)
    assert r["mti"]["aime24"] is None
    assert r["mti"]["avg"] == pytest.approx(2.5) and r["mti"]["id"] == pytest.approx(2.5)
    assert r["mti"]["ood"] is None
    assert r["ti"]["aime24"] == {"de": None}
    assert r["gen"]["math500"] == pytest.approx(100 * (0.1 / 0.5 + 0.1 / 0.8) / 2)


def test_paper_mtis_recomputed_from_its_accuracies():
    data = load_numbers(None)
    base = dict(zip(data["langs"], data["base"]))
    for k, accs in data["trained"].items():
        trained = dict(zip(data["langs"], accs))
        r = M.benchmark_transfer(trained, base, ["en", *data["order"][:k]])
        # k=5 differs in the paper itself (docs/protocol.md#published-parallel-scaling-numbers)
        expected = 3.482 if k == 5 else data["published_mti"][k]
        assert round(r["mti"], 3) == expected
        assert len(r["ti"]) == 10 - k


# -- bootstrap ---------------------------------------------------------------------------------


def _records(model, bench, lang, scores, ids=None):
    ids = ids or [f"q{i}" for i in range(len(scores))]
    return [{"model": model, "benchmark": bench, "lang": lang, "id": i, "score": float(s)} for i, s in zip(ids, scores)]


def test_item_scores_accuracies_align_by_id():
    recs = _records("m", "b", "en", [1, 0, 1, 1]) + _records("m", "b", "de", [0, 1], ids=["q3", "q1"])
    items = M.ItemScores.from_records(recs)
    assert items.ids["b"] == ["q0", "q1", "q2", "q3"]
    assert items.accuracies()["m"]["b"] == {"en": 75.0, "de": 50.0}
    assert np.isnan(items.scores["b"][("m", "de")][0])


def test_item_scores_average_several_samples_of_one_item():
    recs = _records("m", "aime24", "en", [1, 0, 0, 1], ids=["q0", "q0", "q0", "q1"])
    items = M.ItemScores.from_records(recs)
    assert items.scores["aime24"][("m", "en")].tolist() == [pytest.approx(1 / 3), 1.0]
    assert items.accuracies()["m"]["aime24"]["en"] == pytest.approx(100 * (1 / 3 + 1) / 2)


def test_bootstrap_is_seeded_and_contains_point():
    rng = np.random.default_rng(1)
    recs = []
    for lang, (pb, pt) in {"en": (0.5, 0.7), "de": (0.3, 0.45)}.items():
        recs += _records("base", "b", lang, rng.random(200) < pb)
        recs += _records("rl", "b", lang, rng.random(200) < pt)
    items = M.ItemScores.from_records(recs)

    def stat(acc):
        return {"gen": M.gen(acc["rl"]["b"], acc["base"]["b"])}

    a = M.bootstrap(items, stat, n_boot=300, seed=7)
    b = M.bootstrap(items, stat, n_boot=300, seed=7)
    assert a == b
    point = stat(items.accuracies())["gen"]
    assert a["gen"][0] < point < a["gen"][1]
    assert M.bootstrap(items, stat, n_boot=300, seed=8) != a


def test_bootstrap_pairs_items_across_models_and_languages():
    rng = np.random.default_rng(0)
    scores = rng.random(100) < 0.5
    recs = _records("base", "b", "en", scores) + _records("same", "b", "en", scores)
    recs += _records("base", "b", "de", scores) + _records("same", "b", "de", scores)
    items = M.ItemScores.from_records(recs)
    ci = M.bootstrap(items, lambda acc: M.relative_gain(acc["same"]["b"]["en"], acc["base"]["b"]["en"]), n_boot=200)
    assert ci == [0.0, 0.0]  # identical answers: every paired replicate has zero gain
    ci = M.bootstrap(items, lambda acc: acc["same"]["b"]["en"] - acc["base"]["b"]["de"], n_boot=200)
    assert ci == [0.0, 0.0]  # same items drawn for every language


def test_bootstrap_undefined_statistic_gives_none():
    items = M.ItemScores.from_records(_records("base", "b", "en", [0, 0, 0]) + _records("rl", "b", "en", [1, 0, 1]))
    ci = M.bootstrap(items, lambda acc: {"g": M.relative_gain(acc["rl"]["b"]["en"], acc["base"]["b"]["en"])}, n_boot=50)
    assert ci == {"g": None}


def test_bootstrap_interval_coverage_on_simulated_data():
    """About 95% of the intervals from simulated evaluations contain the population Gen.

    Items have a difficulty shared by languages and models (so the data are paired, as real
    evaluations are); the population accuracies are computed exactly from the generating process.
    """
    p_base = {"en": 0.6, "de": 0.4, "sw": 0.2}
    p_rl = {"en": 0.7, "de": 0.5, "sw": 0.3}
    truth = truth_of_process(p_base, p_rl)
    rng = np.random.default_rng(123)
    n_sims, hits = 150, 0
    for s in range(n_sims):
        latent = rng.random(150)  # item difficulty shared by languages and models: paired data
        recs = []
        for lang in p_base:
            noise = rng.random(150) * 0.3
            recs += _records("base", "b", lang, (latent * 0.7 + noise) < p_base[lang] * 0.85)
            recs += _records("rl", "b", lang, (latent * 0.7 + noise) < p_rl[lang] * 0.85)
        items = M.ItemScores.from_records(recs)
        ci = M.bootstrap(items, lambda a: M.gen(a["rl"]["b"], a["base"]["b"]), n_boot=300, seed=s)
        hits += ci[0] <= truth <= ci[1]
    coverage = hits / n_sims
    assert 0.88 <= coverage <= 0.995, coverage


def truth_of_process(p_base, p_rl):
    """Population accuracy of `latent*0.7 + U(0,0.3) < t` is P(0.7a + 0.3u < t), computed exactly."""

    def prob(t):
        # a, u ~ U(0,1) independent; area of {0.7a + 0.3u < t} in the unit square
        grid = np.linspace(0, 1, 20001)
        u_lim = np.clip((t - 0.7 * grid) / 0.3, 0, 1)
        return float(np.trapezoid(u_lim, grid))

    base = {k: 100 * prob(v * 0.85) for k, v in p_base.items()}
    rl = {k: 100 * prob(v * 0.85) for k, v in p_rl.items()}
    return M.gen(rl, base)


def test_bootstrap_with_languages_that_hold_different_items():
    """A benchmark whose languages are not parallel (30 English items, 2 German ones with other
    ids): each language is resampled from its own items, so no replicate leaves one empty."""
    records = [{"model": m, "benchmark": "x", "lang": "en", "id": f"e{i}", "correct": i % 3 == 0}
               for m in ("base", "rl") for i in range(30)]  # the same answers: paired draws give a gap of 0
    records += [{"model": m, "benchmark": "x", "lang": "de", "id": f"d{i}", "correct": i == 0}
                for m in ("base", "rl") for i in range(2)]
    items = M.ItemScores.from_records(records)
    seen = []

    def statistic(acc):
        seen.append(acc["rl"]["x"]["de"])
        return {"de": acc["rl"]["x"]["de"], "gap": acc["rl"]["x"]["en"] - acc["base"]["x"]["en"]}

    ci = M.bootstrap(items, statistic, n_boot=200, seed=0)
    assert len(seen) == 200 and set(seen) == {0.0, 50.0, 100.0}  # resampled from its own 2 items
    assert ci["de"] == [0.0, 100.0]
    assert ci["gap"] == [0.0, 0.0]  # the two models share the English items: paired
