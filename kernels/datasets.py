"""Real and synthetic data sources (layer 6), loaded without network.

Real data comes bundled with installed packages: scikit-learn's small datasets
(CSV files inside the wheel) and scikit-image's sample images (PNG files inside
the wheel).  A source whose package is missing raises :class:`Unavailable`
(an ``ImportError``), so callers can skip it cleanly.

==============  ================================  =========  ===========
name            what                               dtype      statistics
==============  ================================  =========  ===========
breast_cancer   scikit-learn, 569 x 30 features    float64    per column
wine            scikit-learn, 178 x 13             float64    per column
diabetes        scikit-learn, 442 x 10 (scaled)    float64    per column
digits          scikit-learn, 1797 x 64 pixels     float64    per column
camera          scikit-image, 512 x 512 gray       uint8      global
astronaut       scikit-image, 512 x 512 x 3 RGB    uint8      global
coffee          scikit-image, 400 x 600 x 3 RGB    uint8      global
gaussian        synthetic N(0, 1), 10**6, seed 0   float32    global
heavy_tailed    synthetic Student t(2), 10**6      float32    global
==============  ================================  =========  ===========
"""

from __future__ import annotations

import dataclasses

import numpy as np


class Unavailable(ImportError):
    """The package that bundles this dataset is not installed."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    kind: str  # "tabular", "image" or "synthetic"
    data: np.ndarray

    @property
    def axis(self):
        """Per-column statistics for tabular data (scikit-learn's axis=0), global otherwise."""
        return 0 if self.kind == "tabular" else None


TABULAR = ("breast_cancer", "wine", "diabetes", "digits")
IMAGES = ("camera", "astronaut", "coffee")
SYNTHETIC = ("gaussian", "heavy_tailed")
NAMES = TABULAR + IMAGES + SYNTHETIC


def load(name: str) -> Dataset:
    """Load one dataset by name (see the module table)."""
    if name in TABULAR:
        try:
            from sklearn import datasets
        except ImportError as e:
            raise Unavailable(f"dataset {name!r} needs scikit-learn (pip install scikit-learn)") from e
        x = getattr(datasets, f"load_{name}")().data
        return Dataset(name, "tabular", np.ascontiguousarray(x, dtype=np.float64))
    if name in IMAGES:
        try:
            from skimage import data
        except ImportError as e:
            raise Unavailable(f"dataset {name!r} needs scikit-image (pip install scikit-image)") from e
        return Dataset(name, "image", np.ascontiguousarray(getattr(data, name)()))
    if name == "gaussian":
        return Dataset(name, "synthetic", np.random.default_rng(0).standard_normal(1_000_000).astype(np.float32))
    if name == "heavy_tailed":
        return Dataset(name, "synthetic", np.random.default_rng(0).standard_t(2, 1_000_000).astype(np.float32))
    raise ValueError(f"dataset={name!r} is not one of: {', '.join(NAMES)}")
