"""The Parallel Scaling Law: fit f(X) = α·X^β by non-linear least squares.

X is the number of training languages including English (X = 1 is English only, X = 2…8 adds
1…7 parallel languages).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from xling.common.errors import XlingError


@dataclass
class PowerLawFit:
    alpha: float
    beta: float
    alpha_se: float | None
    beta_se: float | None
    r2: float | None
    x: list[float]
    y: list[float]

    def predict(self, x: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        value = self.alpha * np.power(np.asarray(x, dtype=float), self.beta)
        return float(value) if np.ndim(value) == 0 else value

    def as_dict(self) -> dict:
        d = asdict(self)
        d["predicted"] = [float(v) for v in self.predict(self.x)]
        return d


def _power(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    return alpha * np.power(x, beta)


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLawFit:
    """Least-squares fit of y = α·x^β, with standard errors from the covariance and R².

    The starting point comes from a straight-line fit in log-log space when all values are
    positive. At least three points are needed (two parameters, one degree of freedom left).
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise XlingError(f"power-law fit: x and y must be equal-length lists (got {xs.size} and {ys.size})")
    if xs.size < 3:
        raise XlingError(f"power-law fit needs at least 3 points, got {xs.size}")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))):
        raise XlingError("power-law fit: every x and y must be a finite number (an undefined metric cannot be fitted)")
    if np.any(xs <= 0):
        raise XlingError("power-law fit: x (the number of training languages) must be positive")
    if np.all(ys > 0):
        slope, intercept = np.polyfit(np.log(xs), np.log(ys), 1)
        p0 = (math.exp(intercept), slope)
    else:
        p0 = (float(np.mean(ys)) or 1.0, 0.0)
    try:
        with warnings.catch_warnings():  # no covariance (an exact fit): reported as ses None, not as a warning
            warnings.simplefilter("ignore", OptimizeWarning)
            params, cov = curve_fit(_power, xs, ys, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError) as e:
        raise XlingError(f"power-law fit did not converge: {e}") from None
    alpha, beta = (float(v) for v in params)
    ses = [None, None]
    if np.all(np.isfinite(cov)):
        ses = [float(math.sqrt(v)) if v >= 0 else None for v in np.diag(cov)]
    residual = float(np.sum((ys - _power(xs, alpha, beta)) ** 2))
    total = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1 - residual / total if total > 0 else None
    return PowerLawFit(alpha, beta, ses[0], ses[1], r2, xs.tolist(), ys.tolist())
