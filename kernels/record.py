"""The Record (layer 5, under :mod:`kernels.measure`): one measured variant, its JSON form and provenance.

``Record.to_dict()`` is the record schema (``SCHEMA``) the report, the CLI's
``--json`` and asv's ``track_`` benchmarks read: plain values, non-finite floats
as the strings ``"inf"``, ``"-inf"`` and ``"nan"``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

SCHEMA = "precision-bench/record/1"


@dataclasses.dataclass(frozen=True)
class Record:
    """One measured variant: its parameters and every metric of the design."""

    # parameters of the run
    source: str
    input_dtype: str
    transform: str
    formula: str
    compute_dtype: str
    output_dtype: str
    accumulator: str
    acc_dtype: str
    n: int
    nfeat: int
    options: dict
    # survival
    nan_in: int
    inf_in: int
    distinct_in: int
    distinct_out: int
    collisions: int
    survival: float
    max_preimage: int
    entropy_in_bits: float
    entropy_out_bits: float
    info_lost_bits: float
    representable_in_range: int
    utilization: float
    roundtrip_exact: float
    # in the input's own units: comparable across output dtypes (recommendations rank by these)
    max_merged_span_in: float
    max_abs_error_in: float
    mean_abs_error_in: float
    effective_bits_in: float
    # error against the exact reference, in ULPs of the output dtype (its rounding quality)
    max_ulp_error: float
    mean_ulp_error: float
    max_bits_error: float
    max_ulp_error_apply: float
    error_points: int
    error_sampled: bool
    # range events (elements)
    overflow_out: int
    underflow_out: int
    saturated: int
    # speed
    seconds: float
    fit_seconds: float
    elements_per_s: float
    bytes_per_s: float
    roofline_fraction: float | None
    streamed: bool
    provenance: dict
    # pipelines: per step {spec, output_dtype, compute_dtype, distinct_out, collisions, max_merged_span_in}
    steps: tuple = ()
    # elements of the timed apply pass (the source repeated up to TIMING_MIN); 0: not timed
    timed_elements: int = 0
    # block steps (scaled_cast, mx; kernels.measure_blocked): distinct element values and
    # distinct scales of the last block step; None for every other transform
    distinct_codes: int | None = None
    distinct_scales: int | None = None
    # dask arrays (kernels.dask_array): whether unknown chunk sizes (nan shape) were computed
    # first; None for every other source
    chunk_sizes_computed: bool | None = None

    def to_dict(self) -> dict:
        """Plain JSON-ready values; non-finite floats become the strings "inf"/"nan"."""
        out = {"schema": SCHEMA}
        for f in dataclasses.fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.integer, bool, np.bool_)):
        return bool(v) if isinstance(v, (bool, np.bool_)) else int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    return v


@functools.cache
def provenance() -> dict:
    """Versions, CPU, threads and the git commit (when the package is a git checkout)."""
    import llvmlite
    import ml_dtypes
    import numba

    from . import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "precision_bench": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "ml_dtypes": ml_dtypes.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "threads": numba.get_num_threads(),
        "commit": commit,
    }
