"""The scaling law of Mentzer & Montanari (2024), fitted to the budget experiment's cells.

"Scaling Training Data with Lossy Image Compression" (arXiv:2407.17954) models the test
error of a model trained on n images of L bits each by their storage scaling law

    err(n, L) = E* + A n^-alpha + B L^-beta,

so that at a storage budget of S = n L bits the best split follows from the fitted constants:
L* grows as S^(alpha / (alpha + beta)), n* as S^(beta / (alpha + beta)), and the error at the
best split falls as S^-nu with nu = alpha beta / (alpha + beta).

Here it is fitted by robust least squares (scipy's `least_squares`, soft-L1 loss, so that
one noisy cell cannot drag the fit), in units normalised by the median n and L of the cells
for conditioning. The intervals of the exponents come from refitting on bootstrap
replicates of the cells' metrics (the paired resample of test images of sweep/analysis/).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import least_squares

# Exponents are searched in [0, MAX_EXPONENT]; the paper reports values well inside it.
MAX_EXPONENT = 4.0


@dataclass(frozen=True)
class Law:
    """err = E + A (n / n0)^-alpha + B (L / L0)^-beta, with n0 and L0 the cells' medians."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    n0: float
    L0: float
    cells: int

    def error(self, n, bits) -> np.ndarray:
        n, bits = np.asarray(n, dtype=float), np.asarray(bits, dtype=float)
        return (
            self.E + self.A * (n / self.n0) ** -self.alpha + self.B * (bits / self.L0) ** -self.beta
        )

    @property
    def nu(self) -> float:
        """The exponent of the error at the best split of a budget: alpha beta / (alpha + beta)."""
        total = self.alpha + self.beta
        return self.alpha * self.beta / total if total > 0 else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"nu": self.nu}


def fit_law(n, bits, error) -> Law | None:
    """The law fitted to cells (n images, L bits per image, test error); None if there are
    fewer cells than its five constants."""
    n, bits, error = (np.asarray(a, dtype=float) for a in (n, bits, error))
    finite = np.isfinite(n) & np.isfinite(bits) & np.isfinite(error)
    n, bits, error = n[finite], bits[finite], error[finite]
    if len(n) < 5:
        return None
    n0, bits0 = float(np.median(n)), float(np.median(bits))
    x, y = n / n0, bits / bits0

    def residuals(p):
        e, a, alpha, b, beta = p
        return e + a * x**-alpha + b * y**-beta - error

    lower = [0.0, 0.0, 0.0, 0.0, 0.0]
    upper = [1.0, np.inf, MAX_EXPONENT, np.inf, MAX_EXPONENT]
    best = None
    spread = float(np.ptp(error)) or 0.1
    for alpha in (0.3, 1.0):
        for beta in (0.3, 1.0):
            start = [max(float(error.min()) - spread / 2, 0.0), spread, alpha, spread, beta]
            result = least_squares(
                residuals, start, bounds=(lower, upper), loss="soft_l1", f_scale=0.02
            )
            if best is None or result.cost < best.cost:
                best = result
    e, a, alpha, b, beta = (float(v) for v in best.x)
    return Law(e, a, alpha, b, beta, n0, bits0, len(n))


def exponent_intervals(
    n, bits, error_replicates: np.ndarray, confidence: float, fits: int = 200
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of E, alpha and beta over refits on (up to `fits`) bootstrap
    replicates of the cells' errors ((B, cells))."""
    laws = [fit_law(n, bits, row) for row in error_replicates[:fits]]
    laws = [law for law in laws if law is not None]
    if not laws:
        return {}
    tail = (1 - confidence) / 2 * 100
    out = {}
    for name in ("E", "alpha", "beta", "nu"):
        values = np.array([getattr(law, name) for law in laws])
        low, high = np.percentile(values, [tail, 100 - tail])
        out[name] = (float(low), float(high))
    return out
