"""Domains (layer 4): every representable value of a dtype in [lo, hi], and streaming sweeps.

A domain is enumerated in value order through the codec's order keys (-0.0 is
skipped when +0.0 is in range: they are one value).  IEEE operations are
monotone, so an affine transform of inputs in value order gives outputs in
value order (increasing, or decreasing when the scale is negative), and equal
outputs are adjacent: distinct outputs are counted as runs of equal values,
streaming, with no memory and in parallel (each part reports its first and
last run and the parts are joined in order).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time

import numpy as np
from numba import get_num_threads, njit, prange

from ._progress import start_bar
from ._validate import check_choice, check_dtype
from .codecs import (
    JIT,
    REGISTRY,
    DType,
    decode,
    encode,
    key_to_raw,
    keys_to_values,
    to_compute_from,
    value_to_key,
)
from .metrics import Distinct, from_sorted_unique
from .transforms import _FORMULA_TAGS, evaluate

DOMAIN_DTYPES = tuple(n for n, r in REGISTRY.items() if r.itemsize <= 4 and n != "float64")


@dataclasses.dataclass(frozen=True)
class Domain:
    """Every representable value of ``dtype`` in [lo, hi] (``lo``/``hi`` are the
    smallest and largest such values).  ``size`` counts values (+-0 once)."""

    dtype: str
    lo: float
    hi: float
    key_lo: int
    key_hi: int
    skip_key: int  # key of -0.0 when +0.0 is also in range, else one past the end

    @property
    def row(self) -> DType:
        return REGISTRY[self.dtype]

    @property
    def size(self) -> int:
        return self.key_hi - self.key_lo + 1 - (self.key_lo <= self.skip_key <= self.key_hi)

    def keys(self, max_points: int | None = None) -> np.ndarray:
        """All keys in order, or at most ``max_points`` evenly spaced ones (ends kept)."""
        if max_points is None or self.size <= max_points:
            k = np.arange(self.key_lo, self.key_hi + 1, dtype=np.int64)
        else:
            k = np.unique(np.linspace(self.key_lo, self.key_hi, max_points).round().astype(np.int64))
        return k[k != self.skip_key]

    def values(self, max_points: int | None = None) -> np.ndarray:
        """The domain's values (numpy, in ``dtype``), sorted ascending."""
        return keys_to_values(self.dtype, self.keys(max_points))

    def describe(self) -> str:
        return f"domain {self.dtype} [{self.lo:g}, {self.hi:g}]"


def from_domain_sample(dom: Domain, max_points: int) -> Distinct:
    """The domain's values (all, or ``max_points`` evenly spaced) as a Distinct."""
    return from_sorted_unique(dom.values(max_points), dom.row)


def domain(dtype, lo=None, hi=None) -> Domain:
    """Every representable value of ``dtype`` in [lo, hi]; bounds default to the
    dtype's finite range (min..max for integers: 0..255 for uint8, -128..127 for int8)."""
    row = check_dtype(dtype, "dtype")
    check_choice(row.name, DOMAIN_DTYPES, "dtype")
    lo = row.min if lo is None else lo
    hi = row.max if hi is None else hi
    for name, v in (("lo", lo), ("hi", hi)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"domain bound {name}={v!r} must be a real number, got {type(v).__name__}")
    lo, hi = float(lo), float(hi)
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise ValueError(f"domain bounds lo={lo!r}, hi={hi!r} must satisfy lo <= hi")
    vmin = row.min if row.is_integer else (-math.inf if row.min < 0 else row.min)
    lo_c, hi_c = max(lo, vmin), min(hi, row.max if row.is_integer else math.inf)
    if row.is_integer and (lo_c > hi_c or math.ceil(lo_c) > math.floor(hi_c)):
        # before any cast to the integer dtype, which would wrap (300 -> 44 in uint8)
        raise ValueError(f"no {row.name} value lies in [{lo!r}, {hi!r}]; {row.name} holds {row.min:g}..{row.max:g}")
    # nearest representable values, then step inwards past the bounds
    cand = np.array([lo_c, hi_c]).astype(np.float64)
    if row.is_integer:
        cand = np.array([math.ceil(lo_c), math.floor(hi_c)], dtype=np.float64)
    klo, khi = value_to_key(row.name, cand.astype(row.dtype))
    klo, khi = int(klo), int(khi)
    while float(keys_to_values(row.name, [klo])[0]) < lo_c:
        klo += 1
    while float(keys_to_values(row.name, [khi])[0]) > hi_c:
        khi -= 1
    if klo > khi:
        raise ValueError(f"no {row.name} value lies in [{lo!r}, {hi!r}]")
    skip = khi + 1
    if not row.is_integer:
        kneg0, kpos0 = (int(k) for k in value_to_key(row.name, np.array([-0.0, 0.0]).astype(row.dtype)))
        if kneg0 != kpos0 and klo <= kneg0 and kpos0 <= khi:  # fnuz and e8m0 have no -0
            skip = kneg0
    vlo = float(keys_to_values(row.name, [klo])[0])
    vhi = float(keys_to_values(row.name, [khi])[0])
    return Domain(row.name, vlo + 0.0, vhi + 0.0, klo, khi, skip)


# --------------------------------------------------------------------------
# streaming sweep
# --------------------------------------------------------------------------

# integer fields per part
I_VALUES, I_NAN, I_OVERFLOW, I_UNDERFLOW, I_SATURATED, I_ROUNDTRIP, I_RUNS, I_FIRST_RUN, I_LAST_RUN, I_MAX_RUN = range(10)
# float fields per part
F_FIRST, F_LAST, F_SUM_RLOGR, F_MIN, F_MAX, F_FIRST_LO, F_FIRST_HI, F_LAST_LO, F_LAST_HI, F_MAX_SPAN = range(10)
# a run is a maximal stretch of keys with one output; inputs ascend with the key,
# so the input range a run merges is (its last input) - (its first input)


@njit(parallel=True, **JIT)
def _sweep_kernel(k_start, k_stop, skip, nparts, cin, cc, formula, table, inv_formula, inv_table, cout, qmin, qmax, ints, floats):
    p0, p1, p2, p3 = table[0, 0], table[0, 1], table[0, 2], table[0, 3]
    q0, q1, q2, q3 = inv_table[0, 0], inv_table[0, 1], inv_table[0, 2], inv_table[0, 3]
    total = k_stop - k_start
    for part in prange(nparts):
        a = k_start + total * part // nparts
        b = k_start + total * (part + 1) // nparts
        nan = 0
        overflow = 0
        underflow = 0
        saturated = 0
        roundtrip = 0
        values = 0
        runs = 0
        first_run = 0
        max_run = 0
        first_y = np.nan
        prev = np.nan
        run = 0
        sum_rlogr = 0.0
        ymin = np.inf
        ymax = -np.inf
        run_lo = np.nan
        run_hi = np.nan
        first_lo = np.nan
        first_hi = np.nan
        max_span = 0.0
        for k in range(a, b):
            if k == skip:
                continue
            raw = key_to_raw(cin, k)
            v = decode(cin, raw)
            c = evaluate(formula, cc, to_compute_from(cin, cc, v), p0, p1, p2, p3)
            e = encode(cout, c)
            y = np.float64(decode(cout, e))
            values += 1
            if qmax > 0:  # integer output: clipped when the rounded value left [qmin, qmax]
                saturated += int((c != c) or np.rint(c) < qmin or np.rint(c) > qmax)
            else:
                underflow += int((y == 0) and (c != 0) and (c == c))
            if y != y:
                nan += 1
                continue
            overflow += int(np.isinf(y) and np.isfinite(v))
            back = encode(cin, evaluate(inv_formula, cc, to_compute_from(cout, cc, decode(cout, e)), q0, q1, q2, q3))
            roundtrip += int(decode(cin, back) == v)
            ymin = min(ymin, y)
            ymax = max(ymax, y)
            if run > 0 and y == prev:
                run += 1
                run_hi = v
                continue
            if run > 0:  # close the previous run
                if runs == 1:
                    first_run = run
                    first_hi = run_hi
                else:
                    sum_rlogr += run * np.log2(run)
                    max_run = max(max_run, run)
                    if run > 1:
                        max_span = max(max_span, run_hi - run_lo)
            else:
                first_y = y
                first_lo = v
            runs += 1
            prev = y
            run = 1
            run_lo = v
            run_hi = v
        if runs == 1:
            first_run = run
            first_hi = run_hi
        ints[part, I_VALUES] = values
        ints[part, I_NAN] = nan
        ints[part, I_OVERFLOW] = overflow
        ints[part, I_UNDERFLOW] = underflow
        ints[part, I_SATURATED] = saturated
        ints[part, I_ROUNDTRIP] = roundtrip
        ints[part, I_RUNS] = runs
        ints[part, I_FIRST_RUN] = first_run
        ints[part, I_LAST_RUN] = run
        ints[part, I_MAX_RUN] = max_run
        floats[part, F_FIRST] = first_y
        floats[part, F_LAST] = prev
        floats[part, F_SUM_RLOGR] = sum_rlogr
        floats[part, F_MIN] = ymin
        floats[part, F_MAX] = ymax
        floats[part, F_FIRST_LO] = first_lo
        floats[part, F_FIRST_HI] = first_hi
        floats[part, F_LAST_LO] = run_lo
        floats[part, F_LAST_HI] = run_hi
        floats[part, F_MAX_SPAN] = max_span


@dataclasses.dataclass
class SweepResult:
    values: int = 0
    nan_out: int = 0
    overflow_out: int = 0
    underflow_out: int = 0
    saturated: int = 0
    roundtrip_exact: int = 0
    distinct_out: int = 0
    max_preimage: int = 0
    max_merged_span_in: float = 0.0
    sum_rlogr: float = 0.0  # sum over closed output groups of size*log2(size)
    y_min: float = math.inf
    y_max: float = -math.inf
    seconds: float = 0.0
    # the open run at the end of what has been joined so far
    _open_y: float = math.nan
    _open_len: int = 0
    _open_lo: float = math.nan  # first and last input of the open run
    _open_hi: float = math.nan

    def _close(self):
        if self._open_len:
            self.distinct_out += 1
            self.max_preimage = max(self.max_preimage, self._open_len)
            self.sum_rlogr += self._open_len * math.log2(self._open_len)
            if self._open_len > 1:
                self.max_merged_span_in = max(self.max_merged_span_in, self._open_hi - self._open_lo)
            self._open_len = 0

    def _extend(self, y: float, length: int, lo: float, hi: float):
        if self._open_len and y == self._open_y:
            self._open_len += length
            self._open_hi = hi
        else:
            self._close()
            self._open_y, self._open_len, self._open_lo, self._open_hi = y, length, lo, hi

    def join(self, ints: np.ndarray, floats: np.ndarray):
        """Append parts (in key order) to the result."""
        for i, f in zip(ints.tolist(), floats.tolist(), strict=True):
            self.values += i[I_VALUES]
            self.nan_out += i[I_NAN]
            self.overflow_out += i[I_OVERFLOW]
            self.underflow_out += i[I_UNDERFLOW]
            self.saturated += i[I_SATURATED]
            self.roundtrip_exact += i[I_ROUNDTRIP]
            runs = i[I_RUNS]
            if runs == 0:
                continue
            self.y_min = min(self.y_min, f[F_MIN])
            self.y_max = max(self.y_max, f[F_MAX])
            self._extend(f[F_FIRST], i[I_FIRST_RUN], f[F_FIRST_LO], f[F_FIRST_HI])
            if runs == 1:
                continue
            self._close()  # the first run is complete: another run follows it
            internal = runs - 2
            self.distinct_out += internal
            self.max_preimage = max(self.max_preimage, i[I_MAX_RUN])
            self.max_merged_span_in = max(self.max_merged_span_in, f[F_MAX_SPAN])
            self.sum_rlogr += f[F_SUM_RLOGR]
            self._open_y, self._open_len = f[F_LAST], i[I_LAST_RUN]
            self._open_lo, self._open_hi = f[F_LAST_LO], f[F_LAST_HI]

    def finish(self) -> SweepResult:
        self._close()
        return self

    @property
    def entropy_out_bits(self) -> float:
        m = self.values - self.nan_out
        return 0.0 if m == 0 else math.log2(m) - self.sum_rlogr / m


def sweep(dom: Domain, cc_row, kname: str, table, inv_kname: str, inv_table, out_row, *, progress=None,
          ctag=None) -> SweepResult:
    """Stream every value of ``dom`` through one transform variant, counting as it goes.

    ``progress``: None shows a bar on stderr when the sweep will take longer than
    about two seconds; False never shows one.  ``ctag``: the compute codec tag
    (``transforms.compute_tag``: ``cc_row`` under a rounding mode), default ``cc_row.tag``."""
    n_keys = dom.key_hi - dom.key_lo + 1
    batch = 1 << 24
    nparts = 8 * get_num_threads()
    qmin, qmax = (float(out_row.min), float(out_row.max)) if out_row.is_integer else (0.0, 0.0)
    result = SweepResult()
    args = (dom.row.tag, cc_row.tag if ctag is None else ctag, _FORMULA_TAGS[kname], table, _FORMULA_TAGS[inv_kname], inv_table, out_row.tag,
            qmin, qmax)
    bar = None
    t0 = time.perf_counter()
    start = dom.key_lo
    try:
        while start <= dom.key_hi:
            stop = min(start + batch, dom.key_hi + 1)
            ints = np.zeros((nparts, 10), np.int64)
            floats = np.zeros((nparts, 10), np.float64)
            _sweep_kernel(start, stop, dom.skip_key, nparts, *args, ints, floats)
            result.join(ints, floats)
            done = stop - dom.key_lo
            elapsed = time.perf_counter() - t0
            if bar is None and progress is not False and stop <= dom.key_hi and elapsed * n_keys / done > 2.0:
                bar = start_bar(f"sweeping {dom.describe()}", n_keys)
            if bar is not None:
                bar[0].update(bar[1], completed=done)
            start = stop
    finally:
        if bar is not None:
            bar[0].stop()
    result.seconds = time.perf_counter() - t0
    return result.finish()

