"""Power-law fits: exact recovery, noisy recovery, the paper's numbers, bad input."""

import numpy as np
import pytest

from xling.common.errors import XlingError
from xling.analysis.scaling import fit_power_law
from xling.tasks.paper_replay import load_numbers, replay


def test_exact_power_law_is_recovered():
    x = np.arange(1, 9)
    fit = fit_power_law(x, 3.0 * x**0.4)
    assert fit.alpha == pytest.approx(3.0, abs=1e-6)
    assert fit.beta == pytest.approx(0.4, abs=1e-6)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.predict(1.0) == pytest.approx(3.0, abs=1e-6)
    assert fit.predict([2, 4]) == pytest.approx([3 * 2**0.4, 3 * 4**0.4], abs=1e-6)


def test_noisy_power_law_within_standard_errors():
    rng = np.random.default_rng(5)
    x = np.arange(2, 12, dtype=float)
    y = 1.5 * x**0.3 + rng.normal(0, 0.02, x.size)
    fit = fit_power_law(x, y)
    assert abs(fit.alpha - 1.5) < 3 * fit.alpha_se
    assert abs(fit.beta - 0.3) < 3 * fit.beta_se
    assert 0 < fit.alpha_se < 0.1 and 0 < fit.beta_se < 0.05
    assert 0.95 < fit.r2 < 1.0


def test_negative_exponent_and_negative_values():
    x = np.arange(1, 7, dtype=float)
    fit = fit_power_law(x, 10 * x**-0.5)
    assert fit.beta == pytest.approx(-0.5, abs=1e-6)
    fit = fit_power_law(x, -2 * x**0.5)  # all negative: no log-log start, still fits
    assert fit.alpha == pytest.approx(-2.0, abs=1e-4) and fit.beta == pytest.approx(0.5, abs=1e-4)


def test_a_fit_without_covariance_has_no_standard_errors_and_warns_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's OptimizeWarning would fail here
        fit = fit_power_law([1, 2, 3], [0, 0, 0])  # alpha = 0 leaves beta undetermined
    assert (fit.alpha, fit.alpha_se, fit.beta_se, fit.r2) == (0.0, None, None, None)


def test_paper_fits():
    result = replay(load_numbers(None), fit_from=2)
    mti, acc = result["fits"]["mti"], result["fits"]["accuracy"]
    assert mti.alpha == pytest.approx(2.00, abs=0.005) and mti.beta == pytest.approx(0.29, abs=0.006)
    assert acc.alpha == pytest.approx(56.98, abs=0.01) and acc.beta == pytest.approx(0.02, abs=0.001)
    assert mti.x == [2, 3, 4, 5, 6, 7, 8]
    # Monolingual Generalization Gap: MTI 2.00 vs 1.16, accuracy 56.98 vs 54.24
    assert result["english_only"]["mti"] == pytest.approx(1.163)
    assert result["english_only"]["accuracy"] == pytest.approx(54.24, abs=0.005)
    assert result["gap"]["mti"] == pytest.approx(2.00 - 1.163, abs=0.005)
    assert result["gap"]["accuracy"] == pytest.approx(56.98 - 54.24, abs=0.015)  # the paper rounds both
    assert result["leap"]["mti"] == pytest.approx(2.496 - 1.163)
    mean = lambda k: sum(load_numbers(None)["trained"][k]) / 11  # noqa: E731
    assert result["leap"]["accuracy"] == pytest.approx(mean(1) - mean(0))
    assert mean(0) == pytest.approx(54.236, abs=1e-3) and mean(7) == pytest.approx(59.518, abs=1e-3)
    # the fit of the recomputed MTIs agrees
    assert result["fits"]["mti_recomputed"].alpha == pytest.approx(2.00, abs=0.005)


@pytest.mark.parametrize(
    "x,y,message",
    [
        ([1, 2], [1, 2], "at least 3 points"),
        ([1, 2, 3], [1, float("nan"), 2], "finite"),
        ([0, 1, 2], [1, 2, 3], "must be positive"),
        ([1, 2, 3], [1, 2], "equal-length"),
    ],
)
def test_bad_input(x, y, message):
    with pytest.raises(XlingError, match=message):
        fit_power_law(x, y)
