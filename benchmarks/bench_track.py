"""track_ benchmarks: precision, lower is better (asv flags any increase).

Each class measures its whole grid once in ``setup_cache`` (asv runs it once
per class and hands the result to every benchmark) with :func:`kernels.measure`,
and each ``track_`` returns one plain number of a Record:

================================  ====================================  ======
benchmark                         Record                                unit
================================  ====================================  ======
track_values_lost                 ``collisions`` (distinct in - out)    values
track_max_ulp_error_plus_1        ``max_ulp_error + 1``                 ulp
track_info_bits_lost              ``info_lost_bits``                    bits
track_roundtrip_failures          distinct inputs not given back        values
================================  ====================================  ======

``version`` is explicit: results stay comparable across commits until the
semantics of a case change on purpose (then bump it).
"""

import warnings

import kernels as K
from kernels import datasets

OUTPUTS = ["float16", "bfloat16", "float32"]
DOMAINS = {"uint8": ("uint8", 0, 255), "12-bit": ("uint16", 0, 4095), "uint16": ("uint16", 0, 65535)}
DOMAIN_TRANSFORMS = {"minmax": {}, "standardize": {}, "scale-by-255": {"divisor": 255.0}}
REAL = ["breast_cancer", "wine", "diabetes", "camera", "astronaut"]
REAL_TRANSFORMS = {"minmax": {}, "standardize": {}, "scale-by-255": {"divisor": 255.0}, "maxabs": {}}
VERSION = "1"


def _metrics(record) -> dict:
    return {
        "values_lost": int(record.collisions),
        "max_ulp_error_plus_1": float(record.max_ulp_error) + 1.0,
        "info_bits_lost": float(record.info_lost_bits),
        "roundtrip_failures": int(round(record.distinct_in * (1.0 - record.roundtrip_exact))),
    }


def _measure(source, transform, out, axis=None, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        name = "scale" if transform == "scale-by-255" else transform
        return _metrics(K.measure(source, name, output_dtype=out, axis=axis, repeat=1, **options))


class _Track:
    """The four track_ benchmarks over a grid measured once in setup_cache."""

    version = VERSION

    def setup(self, cache, *params):
        if tuple(params) not in cache:  # a missing package, or a case that does not apply
            raise NotImplementedError(f"{params} is not available here")

    def _get(self, cache, key, metric):
        return cache[key][metric]


def _domain_class(dname: str):
    dtype, lo, hi = DOMAINS[dname]

    class TrackDomain(_Track):
        __doc__ = f"Every value of the {dname} domain ({dtype} {lo}..{hi}), as in the design's table."
        params = [list(DOMAIN_TRANSFORMS), OUTPUTS]
        param_names = ["transform", "output"]
        timeout = 600

        def setup_cache(self):
            dom = K.domain(dtype, lo, hi)
            return {(t, out): _measure(dom, t, out, **opts) for t, opts in DOMAIN_TRANSFORMS.items() for out in OUTPUTS}

        def track_values_lost(self, cache, *key):
            return self._get(cache, key, "values_lost")

        def track_max_ulp_error_plus_1(self, cache, *key):
            return self._get(cache, key, "max_ulp_error_plus_1")

        def track_info_bits_lost(self, cache, *key):
            return self._get(cache, key, "info_bits_lost")

        def track_roundtrip_failures(self, cache, *key):
            return self._get(cache, key, "roundtrip_failures")

        track_values_lost.unit = "values"
        track_max_ulp_error_plus_1.unit = "ulp"
        track_info_bits_lost.unit = "bits"
        track_roundtrip_failures.unit = "values"

    TrackDomain.__name__ = TrackDomain.__qualname__ = "TrackDomain" + dname.replace("-", "").title().replace("Bit", "bit")
    return TrackDomain


# one class per domain, so each measures its own grid once (and a run can select one)
TrackDomainUint8 = _domain_class("uint8")
TrackDomain12bit = _domain_class("12-bit")
TrackDomainUint16 = _domain_class("uint16")


class TrackRealData(_Track):
    """Real data bundled with scikit-learn and scikit-image (skipped when not installed).
    Tabular data is scaled per column (axis=0), images globally; scale-by-255 is for
    images only."""

    params = [REAL, list(REAL_TRANSFORMS), OUTPUTS]
    param_names = ["dataset", "transform", "output"]
    timeout = 600

    def setup_cache(self):
        cache = {}
        for name in REAL:
            try:
                ds = datasets.load(name)
            except datasets.Unavailable:
                continue
            for t, opts in REAL_TRANSFORMS.items():
                if t == "scale-by-255" and ds.kind != "image":
                    continue
                for out in OUTPUTS:
                    cache[(name, t, out)] = _measure(ds.data, t, out, axis=ds.axis, **opts)
        return cache

    track_values_lost = TrackDomainUint8.track_values_lost
    track_max_ulp_error_plus_1 = TrackDomainUint8.track_max_ulp_error_plus_1
    track_info_bits_lost = TrackDomainUint8.track_info_bits_lost
    track_roundtrip_failures = TrackDomainUint8.track_roundtrip_failures


