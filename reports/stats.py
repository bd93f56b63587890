"""The one percentile definition used by reports, `compare` and every bench.

p50 / p95 are linear interpolation between the closest ranks (Hyndman & Fan type 7, the
default of numpy and pandas): for sorted values x[0..n-1], the q-th percentile sits at rank
(n − 1)·q/100. Percentiles on fewer than FEW_SAMPLES values are shown but marked.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

FEW_SAMPLES = 20
PERCENTILE_DEFINITION = "linear interpolation between closest ranks (Hyndman & Fan type 7)"


def finite(values: Iterable) -> np.ndarray:
    """The values as floats, with missing ones (None, NaN, empty CSV cells) left out."""
    array = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return array[np.isfinite(array)]


def percentile(values: Iterable, q: float) -> float | None:
    """The q-th percentile (0–100) of the values that are present; None when there are none."""
    array = finite(values)
    return float(np.percentile(array, q, method="linear")) if len(array) else None


def distribution(values: Iterable) -> dict:
    """{n, p50, p95, few}: N always beside the percentiles."""
    array = finite(values)
    return {
        "n": int(len(array)),
        "p50": percentile(array, 50),
        "p95": percentile(array, 95),
        "few": len(array) < FEW_SAMPLES,
    }


def rounded_distribution(values: Iterable, digits: int = 1) -> dict:
    """distribution(), with p50 and p95 rounded: for JSON that people read."""
    d = distribution(values)
    return {**d, "p50": rounded(d["p50"], digits), "p95": rounded(d["p95"], digits)}


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
