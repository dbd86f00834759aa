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
track_max_merged_span_in          ``max_merged_span_in``                input units
track_max_error_in                ``max_abs_error_in``                  input units
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
# the report's table of library conventions, on these domains (asv: TrackPresets)
PRESET_DOMAINS = {"uint8": ("uint8", 0, 255), "float16-unit": ("float16", 0, 1)}
# the formats of 8 bits and below (issue 16) on the domains their users quantize
LOW_OUTPUTS = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"]
LOW_DOMAINS = {"uint8": ("uint8", 0, 255), "12-bit": ("uint16", 0, 4095), "float16-unit": ("float16", 0, 1)}
LOW_TRANSFORMS = {"minmax": {}, "standardize": {}}
# the OCP MX formats (kernels.advise.MX_OUTPUTS: blocks of 32, one e8m0 scale each) on the same
# domains: each domain's values as float32, a 1-D array in value order (the last block
# completed with zeros), then mx(...); the output is the dequantized value, so the errors
# are |y - x| in the domain's own units, and ULPs are not defined (NaN)
MX_OUTPUTS = ["MXFP8 (e4m3)", "MXFP8 (e5m2)", "MXFP6 (e2m3)", "MXFP6 (e3m2)", "MXFP4"]
MX_TRANSFORMS = {"values": "cast(output_dtype=float32)"}
VERSION = "2"  # 2: each domain class its own grid (in 1 all three recorded one shared grid)


def _metrics(record) -> dict:
    return {
        "values_lost": int(record.collisions),
        "max_ulp_error_plus_1": float(record.max_ulp_error) + 1.0,
        "info_bits_lost": float(record.info_lost_bits),
        "roundtrip_failures": int(round(record.distinct_in * (1.0 - record.roundtrip_exact))),
        "max_merged_span_in": float(record.max_merged_span_in),
        "max_error_in": float(record.max_abs_error_in),
    }


def _measure(source, transform, out, axis=None, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        name = "scale" if transform == "scale-by-255" else transform
        return _metrics(K.measure(source, name, output_dtype=out, axis=axis, repeat=1, **options))


class _Track:
    """The track_ benchmarks over a grid measured once in setup_cache.

    Every public subclass must define ``setup_cache`` in its own body: asv keys the
    cache by "module:line of setup_cache's source"
    (asv_runner/benchmarks/_base.py, get_setup_cache_key), runs it once per key and
    serves that one result to every benchmark with the key (airspeed-velocity/asv#880).
    An inherited or factory-made setup_cache is one source line shared by all
    classes, so all of them got the grid of whichever ran first.
    """

    version = VERSION
    timeout = 600

    def setup(self, cache, *params):
        if tuple(params) not in cache:  # a missing package, or a case that does not apply
            raise NotImplementedError(f"{params} is not available here")

    def track_values_lost(self, cache, *key):
        return cache[key]["values_lost"]

    def track_max_ulp_error_plus_1(self, cache, *key):
        return cache[key]["max_ulp_error_plus_1"]

    def track_info_bits_lost(self, cache, *key):
        return cache[key]["info_bits_lost"]

    def track_roundtrip_failures(self, cache, *key):
        return cache[key]["roundtrip_failures"]

    def track_max_merged_span_in(self, cache, *key):
        return cache[key]["max_merged_span_in"]

    def track_max_error_in(self, cache, *key):
        return cache[key]["max_error_in"]

    track_values_lost.unit = "values"
    track_max_merged_span_in.unit = "input units"
    track_max_error_in.unit = "input units"
    track_max_ulp_error_plus_1.unit = "ulp"
    track_info_bits_lost.unit = "bits"
    track_roundtrip_failures.unit = "values"


class _TrackDomain(_Track):
    """Every value of the domain ``DOMAINS[self.domain]``, as in the design's table."""

    params = [list(DOMAIN_TRANSFORMS), OUTPUTS]
    param_names = ["transform", "output"]
    domain = ""  # a key of DOMAINS, set by each subclass

    def _grid(self) -> dict:
        dom = K.domain(*DOMAINS[self.domain])
        return {(t, out): _measure(dom, t, out, **opts) for t, opts in DOMAIN_TRANSFORMS.items() for out in OUTPUTS}


# one class per domain, so each measures its own grid once (and a run can select
# one); each setup_cache is its own source line, hence its own asv cache key
class TrackDomainUint8(_TrackDomain):
    """Every value of the uint8 domain (uint8 0..255), as in the design's table."""

    domain = "uint8"

    def setup_cache(self):
        return self._grid()


class TrackDomain12bit(_TrackDomain):
    """Every value of the 12-bit domain (uint16 0..4095), as in the design's table."""

    domain = "12-bit"

    def setup_cache(self):
        return self._grid()


class TrackDomainUint16(_TrackDomain):
    """Every value of the uint16 domain (uint16 0..65535), as in the design's table."""

    domain = "uint16"

    def setup_cache(self):
        return self._grid()


class _TrackLowPrecision(_Track):
    """Every value of ``LOW_DOMAINS[self.domain]`` into each float8 format."""

    params = [list(LOW_TRANSFORMS), LOW_OUTPUTS]
    param_names = ["transform", "output"]
    domain = ""

    def _grid(self) -> dict:
        dom = K.domain(*LOW_DOMAINS[self.domain])
        return {(t, out): _measure(dom, t, out, **opts) for t, opts in LOW_TRANSFORMS.items() for out in LOW_OUTPUTS}


class TrackFloat8Uint8(_TrackLowPrecision):
    """Every uint8 value into each float8 format."""

    domain = "uint8"

    def setup_cache(self):
        return self._grid()


class TrackFloat8_12bit(_TrackLowPrecision):
    """Every 12-bit value (uint16 0..4095) into each float8 format."""

    domain = "12-bit"

    def setup_cache(self):
        return self._grid()


class TrackFloat8Float16Unit(_TrackLowPrecision):
    """Every float16 value in [0, 1] into each float8 format."""

    domain = "float16-unit"

    def setup_cache(self):
        return self._grid()


def _measure_mx(values, prefix, output) -> dict:
    from kernels.advise import mx_step
    from kernels.measure_pipeline import measure_pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pipe = K.pipeline(prefix, mx_step(output))
        return _metrics(measure_pipeline(values, pipe, repeat=1))


class _TrackMX(_Track):
    """Every value of ``LOW_DOMAINS[self.domain]``, as float32 in one 1-D array in value
    order (blocks of 32 consecutive values, the last completed with zeros), into each
    MX format (``mx(dtype=..., block=32, pad=zeros)``, :mod:`kernels.measure_blocked`)."""

    params = [list(MX_TRANSFORMS), MX_OUTPUTS]
    param_names = ["transform", "output"]
    domain = ""

    def _grid(self) -> dict:
        values = K.domain(*LOW_DOMAINS[self.domain]).values()
        return {(t, out): _measure_mx(values, prefix, out) for t, prefix in MX_TRANSFORMS.items() for out in MX_OUTPUTS}


class TrackMXUint8(_TrackMX):
    """Every uint8 value (as float32, 1-D in value order) into each MX format."""

    domain = "uint8"

    def setup_cache(self):
        return self._grid()


class TrackMX12bit(_TrackMX):
    """Every 12-bit value (0..4095 as float32, 1-D in value order) into each MX format."""

    domain = "12-bit"

    def setup_cache(self):
        return self._grid()


class TrackMXFloat16Unit(_TrackMX):
    """Every float16 value in [0, 1] (as float32, 1-D in value order) into each MX format."""

    domain = "float16-unit"

    def setup_cache(self):
        return self._grid()


class TrackRealData(_Track):
    """Real data bundled with scikit-learn and scikit-image (skipped when not installed).
    Tabular data is scaled per column (axis=0), images globally; scale-by-255 is for
    images only."""

    params = [REAL, list(REAL_TRANSFORMS), OUTPUTS]
    param_names = ["dataset", "transform", "output"]

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


def preset_grid() -> dict:
    """{(convention label, domain): metrics} for every convention its library accepts."""
    from kernels.pipeline import pipeline
    from kernels.report_presets import SPECS, convention_record

    grid = {}
    for label, spec in SPECS:
        try:
            pipe = pipeline(spec)
        except ValueError:  # not in the registry
            continue
        for dname, dom in PRESET_DOMAINS.items():
            try:
                grid[(label, dname)] = _metrics(convention_record(pipe, dname, K.domain(*dom), quick=True))
            except (TypeError, ValueError):  # the library refuses this input
                continue
    return grid


class TrackPresets(_Track):
    """Each library convention (the report's table) on every value of each domain:
    a library release that changes its arithmetic shows as a change here."""

    params = [[label for label, _ in __import__("kernels.report_presets", fromlist=["SPECS"]).SPECS], list(PRESET_DOMAINS)]
    param_names = ["convention", "domain"]

    def setup_cache(self):
        return preset_grid()
