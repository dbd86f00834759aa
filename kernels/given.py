"""Given statistics (layer 2): :func:`params` builds :class:`Params` from numbers
the user knows (ImageNet's mean and std, a sensor's range) instead of fitting them."""

from __future__ import annotations

import numpy as np

from ._validate import check_choice, check_dtype
from .params import Frozen, Params


# the statistics a user may give instead of fitting them, per transform; names
# as scikit-learn's attributes (data_min_, ...), without the underscore
GIVEN = {
    "minmax": ("data_min", "data_max"),
    "standardize": ("mean", "std"),
    "maxabs": ("maxabs",),
    "scale": ("divisor",),
    "quantize": ("scale", "zero_point"),
    "dequantize": ("scale", "zero_point"),
}
# which Params.stats entry each given statistic becomes
_STAT_NAME = {"data_min": "min", "data_max": "max"}
GIVEN_AXIS = (-1,)  # given per-feature statistics: features along the last axis, any ndim


def _given_array(value, name: str) -> np.ndarray:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}={value!r} must be a number or a sequence of numbers (one per feature)")
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a number or a sequence of numbers (one per feature)") from None
    if a.ndim > 1 or a.size == 0:
        raise ValueError(f"{name} has shape {a.shape}; pass one number or a 1-D sequence (one per feature)")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}={value!r} must be finite (got {a.tolist()})")
    return a.reshape(-1)


def params(transform, *, input_dtype="float32", **stats) -> Params:
    """Parameters built from given statistics instead of fitted ones.

    ==========  ==================================  ===========================
    transform   statistics (numbers, or one per      options
                feature: channel-last)
    ==========  ==================================  ===========================
    minmax      ``data_min``, ``data_max``           ``feature_range=(0, 1)``
    standardize ``mean``, ``std`` (``var = std**2``)
    maxabs      ``maxabs``
    scale       ``divisor``
    quantize    ``scale``, ``zero_point``            ``qdtype='uint8'``
    dequantize  ``scale``, ``zero_point``            ``qdtype='uint8'``
    ==========  ==================================  ===========================

    Sequences give per-feature statistics along the last axis of the data (the
    columns of 2-D data, the channels of channel-last images), checked when
    applied.  A statistic of the wrong shape, or not finite: ``ValueError``
    naming it.  ``kernels.params("standardize", mean=imagenet_mean, std=...)``.
    """
    from .stats import TRANSFORMS, _feature_range, fit  # fit() calls back here for given statistics

    transform = check_choice(transform, TRANSFORMS, "transform")
    need = GIVEN[transform]
    extra = {"minmax": ("feature_range",), "quantize": ("qdtype",), "dequantize": ("qdtype",)}.get(transform, ())
    unknown = set(stats) - set(need) - set(extra)
    if unknown:
        raise TypeError(f"params({transform!r}) got {sorted(unknown)}; it takes {', '.join(need + extra)}")
    missing = [k for k in need if k not in stats]
    if missing:
        raise TypeError(f"params({transform!r}) needs {', '.join(need)} (missing {', '.join(missing)})")
    arrays = {k: _given_array(stats[k], k) for k in need}
    sizes = {a.size for a in arrays.values()} - {1}
    if len(sizes) > 1:
        raise ValueError(f"{' and '.join(need)} have different lengths {[a.size for a in arrays.values()]}; "
                         "give one number or the same number of features for each")
    nfeat = sizes.pop() if sizes else 1
    arrays = {k: np.broadcast_to(a, (nfeat,)).copy() for k, a in arrays.items()}
    opts: dict = {}
    out: dict = {}
    if transform in ("quantize", "dequantize"):
        x = np.zeros((1, nfeat) if nfeat > 1 else 1)
        fitted = fit(x, transform, axis=0 if nfeat > 1 else None, qdtype=stats.get("qdtype", "uint8"),
                     scale=arrays["scale"], zero_point=arrays["zero_point"])
        out, opts = dict(fitted.stats), dict(fitted.options)
        out.pop("count", None)
    else:
        if transform == "minmax":
            if (arrays["data_max"] < arrays["data_min"]).any():
                raise ValueError("data_max is below data_min; give data_min <= data_max for every feature")
            opts["feature_range"] = _feature_range(stats)
        if transform == "standardize":
            if (arrays["std"] < 0).any():
                raise ValueError(f"std={stats['std']!r} must be >= 0")
            arrays["var"] = arrays["std"] ** 2
        if transform == "scale" and (arrays["divisor"] == 0).any():
            raise ValueError(f"divisor={stats['divisor']!r} must be nonzero")
        if transform == "maxabs" and (arrays["maxabs"] < 0).any():
            raise ValueError(f"maxabs={stats['maxabs']!r} must be >= 0")
        out = {_STAT_NAME.get(k, k): v for k, v in arrays.items()}
    return Params(
        transform=transform,
        input_dtype=check_dtype(input_dtype, "input_dtype").name,
        axis=GIVEN_AXIS if nfeat > 1 else None,
        nfeat=nfeat,
        stats=Frozen(out, arrays=True),
        options=Frozen(opts),
        accumulator="given",
        acc_dtype="given",
        nan_policy="raise",
    )
