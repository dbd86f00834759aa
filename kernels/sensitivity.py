"""A model in the loop (layer 7): do one-step input changes survive the pipeline into a model?

``precision-bench sensitivity`` answers the seed question with a model rather
than with value counts: a small classifier is trained on the exact (float64)
normalised inputs of a data set; then, for each pipeline and storage dtype,
every raw input of every sample is moved one step, one at a time, and we count
the share of moves that leave unchanged

(a) the stored model input (the pipeline's output element, bit for bit),
(b) the model's output (its float32 class probabilities, bit for bit), and
(c) the predicted class.

A move the pipeline erased in (a) cannot reach the model at all; (b) and (c)
say what the model still sees of the moves that got through.

Data sets and tasks
-------------------

================  =============================================  =========  ==============================
name              samples x features (raw dtype)                 one step   task (labels)
================  =============================================  =========  ==============================
breast_cancer     scikit-learn, 569 x 30 (float64)               next value malignant / benign (2 classes)
wine              scikit-learn, 178 x 13 (float64)               next value cultivar (3 classes)
digits            scikit-learn, 1797 x 64 (float64, 0..16)       next value the digit (10 classes)
camera            scikit-image camera, 4096 x 64 (uint8)         one count  bright patch (2 classes)
camera12          camera at 12 bits, 4096 x 64 (uint16 0..4095)  one count  bright patch (2 classes)
camera16          camera at 16 bits, 4096 x 64 (uint16)          one count  bright patch (2 classes)
FILE.npz          arrays ``X`` (samples x features) and ``y``    see below  classify ``y``
================  =============================================  =========  ==============================

The default run uses breast_cancer, wine, digits, camera12 and camera16.

- Camera task: the 512 x 512 uint8 image cut into 8 x 8 patches (64 x 64 =
  4,096 samples, row-major), each patch's 64 pixels (row-major) the features.
  The label is 1 when the patch's pixel sum (of the uint8 image) is above the
  median patch sum, else 0: "is this patch brighter than the median patch", a
  task a linear model can learn.  All three cameras share these labels.
- The 12-bit and 16-bit cameras are exact integer rescales of the uint8 image
  ``x``: 16-bit ``x * 257`` (0 -> 0, 255 -> 65535, exactly ``x / 255 * 65535``);
  12-bit ``(x * 4095 + 127) // 255``, the correctly rounded ``x * 4095 / 255``
  (never a tie, 255 being odd; 0 -> 0, 255 -> 4095, one-to-one).
- Files: an ``.npz`` holding ``X`` (2-D, samples x features; uint8, uint16 or
  a float dtype, finite) and ``y`` (one label per sample, at least two
  classes), read without unpickling.  A ``.npy`` has no labels and is refused.

One step
--------

- Float data (the scikit-learn sets, float files): the next larger distinct
  value the feature takes in the data set; the largest moves to the next
  smaller one.  A feature with a single value has no step: its samples are
  left out of ``moves`` (digits has such constant pixels).
- Integer data (the cameras, integer files): one count up, one count down at
  the top of the range (255, 4095, 65535; a file's dtype maximum).

The model and what "unchanged" means
------------------------------------

=======================  ======================================================================
model                    ``LogisticRegression(C=1.0, max_iter=5000, random_state=seed)`` (scikit-learn, lbfgs)
trained on               the exact normalised inputs: the pipeline with every cast removed and
                         every transform step computed into float64 (``compute_dtype`` and
                         ``output_dtype`` float64; statistics fitted in float64, pairwise);
                         presets, clips and (de)quantize steps are kept as they are.  One
                         model per data set and reference (pipelines differing only in their
                         storage dtype share it); trained once, on all samples
stored inputs            the pipeline's outputs (fitted on the raw data, per feature when the
                         spec says ``axis=0``), converted to float32 (exact for every dtype
                         of at most 32 bits; float64 outputs are rounded to float32)
logits                   float32: ``z_k = b_k``, then ``z_k = z_k + x_j * w_kj`` for features
                         j = 0, 1, ... in order, each product and sum rounded to float32 (no FMA);
                         ``w``, ``b`` = ``coef_``, ``intercept_`` rounded to float32
probabilities            float32: 2 classes ``p1 = 1 / (1 + exp(-z))``, ``p0 = 1 - p1``
                         (scikit-learn's expit form); more, softmax ``e_k = exp(z_k - max z)``,
                         ``p_k = e_k / (e_0 + e_1 + ...)`` summed in order (numpy's float32 exp)
input unchanged          the moved input's stored element has the same bits as before
output unchanged         every float32 probability has the same bits as before
class unchanged          argmax of the probabilities (first maximum) is the same as before
accuracy_exact           scikit-learn's ``score`` on the float64 exact inputs (training accuracy)
accuracy_stored          the float32 classes on the stored inputs against the labels
=======================  ======================================================================

Moves whose stored input is unchanged leave (b) and (c) unchanged too; the
others are evaluated vectorised: for feature ``j`` only column ``j`` differs,
so the logits restart from the running sum before feature ``j``.

Default pipelines (``pipelines=`` replaces them for every data set; tabular
specs need ``axis=0`` for per-feature statistics):

- float data: ``standardize(axis=0, output_dtype=D)`` for D in float16,
  bfloat16, float32, and ``minmax(axis=0, output_dtype=D)`` for float16, bfloat16;
- integer data with range R (255, 4095, 65535, a file's dtype max):
  ``scale(divisor=R, output_dtype=D)`` for float16, bfloat16, float32, and for
  the 12- and 16-bit cameras the 8-bit rescale
  ``minmax(feature_range=(0, 255), output_dtype=uint8)``.

The default run (5 data sets, 23 pipelines, 2,742,157 moves) took 7.9 to
11.8 s (three runs of ``time precision-bench sensitivity``, 5 s of CPU) on
this 2-core machine on 2026-12-02, numba's disk cache warm, with other jobs
keeping the load average at 4 to 5.  It runs numba and BLAS on one thread (see ``_one_thread``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from pathlib import Path

import numpy as np

from .datasets import Unavailable
from .pipeline import Pipeline, pipeline
from .steps import step

SCHEMA = "precision-bench/sensitivity/1"
TABULAR = ("breast_cancer", "wine", "digits")
CAMERAS = ("camera", "camera12", "camera16")
NAMES = TABULAR + CAMERAS
DEFAULT_DATA = ("breast_cancer", "wine", "digits", "camera12", "camera16")
PATCH = 8
MAX_ITER = 5000

_TASKS = {
    "breast_cancer": "malignant / benign (2 classes)",
    "wine": "cultivar (3 classes)",
    "digits": "the digit (10 classes)",
}
_CAMERA_TASK = "8x8 patches as samples, 64 pixels as features; class: patch sum above the median patch sum (2 classes)"


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """A data set ready for the model: raw inputs ``x`` (samples x features),
    labels ``y``, and how one step moves (``top`` for integer data)."""

    name: str
    task: str
    x: np.ndarray
    y: np.ndarray
    top: int | None  # integer data: the top of the range (moves go down from it); None: float data
    pipelines: tuple  # default specs

    @property
    def integer(self) -> bool:
        return self.top is not None


@dataclasses.dataclass(frozen=True)
class Row:
    """One (data set, pipeline) result; shares are of ``moves``."""

    data: str
    task: str
    model: str
    pipeline: str
    reference: str  # the float64 pipeline the model was trained on
    storage_dtype: str
    n_samples: int
    n_features: int
    moves: int
    input_unchanged: float
    output_unchanged: float
    class_unchanged: float
    accuracy_exact: float
    accuracy_stored: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def _float_pipelines() -> tuple:
    return tuple(f"standardize(axis=0, output_dtype={d})" for d in ("float16", "bfloat16", "float32")) + tuple(
        f"minmax(axis=0, output_dtype={d})" for d in ("float16", "bfloat16")
    )


def _integer_pipelines(top: int, uint8_path: bool = False) -> tuple:
    specs = tuple(f"scale(divisor={top}, output_dtype={d})" for d in ("float16", "bfloat16", "float32"))
    return specs + (("minmax(feature_range=(0, 255), output_dtype=uint8)",) if uint8_path else ())


def camera_patches(image: np.ndarray) -> np.ndarray:
    """(4096, 64): the 8 x 8 patches of a 512 x 512 image, row-major, pixels row-major."""
    h, w = image.shape
    p = image.reshape(h // PATCH, PATCH, w // PATCH, PATCH).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(p.reshape(-1, PATCH * PATCH))


def rescale_camera(image: np.ndarray, bits: int) -> np.ndarray:
    """The uint8 image at 12 or 16 bits, by the exact integer rescale of the module docstring."""
    x = image.astype(np.int64)
    if bits == 16:
        return (x * 257).astype(np.uint16)
    if bits == 12:
        return ((x * 4095 + 127) // 255).astype(np.uint16)
    raise ValueError(f"bits={bits!r}: the camera is rescaled to 12 or 16 bits")


def _camera(name: str) -> Task:
    try:
        from skimage import data
    except ImportError as e:
        raise Unavailable(f"data {name!r} needs scikit-image (pip install scikit-image)") from e
    image = np.ascontiguousarray(data.camera())
    sums = camera_patches(image).astype(np.int64).sum(axis=1)
    y = (sums > np.median(sums)).astype(np.int64)
    if name == "camera":
        x, top = camera_patches(image), 255
    else:
        bits = 12 if name == "camera12" else 16
        x, top = camera_patches(rescale_camera(image, bits)), (1 << bits) - 1
    return Task(name, _CAMERA_TASK, x, y, top, _integer_pipelines(top, uint8_path=name != "camera"))


def _file(path: str) -> Task:
    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise ValueError(f"--data {path}: sensitivity needs labels: save an .npz with arrays X (samples x features) "
                         "and y (one label per sample), e.g. np.savez(path, X=X, y=y)")
    try:
        with np.load(p, allow_pickle=False) as f:
            missing = [k for k in ("X", "y") if k not in f.files]
            if missing:
                raise ValueError(f"--data {path}: no array {' or '.join(missing)} (it holds {', '.join(f.files) or 'nothing'}); "
                                 "save X (samples x features) and y (labels)")
            x, y = f["X"], f["y"]
    except (OSError, EOFError) as e:
        raise ValueError(f"--data {path}: cannot read it as .npz ({e})") from None
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"--data {path}: X has shape {x.shape}; save a 2-D array of samples x features (at least 2 samples)")
    if y.shape != (x.shape[0],):
        raise ValueError(f"--data {path}: y has shape {y.shape}; save one label per sample, shape ({x.shape[0]},)")
    if len(np.unique(y)) < 2:
        raise ValueError(f"--data {path}: y holds one class; a classifier needs at least two")
    x = np.ascontiguousarray(x.astype(x.dtype.newbyteorder("=")))
    if x.dtype in (np.uint8, np.uint16):
        top = int(np.iinfo(x.dtype).max)
        return Task(p.name, f"classify y from {p.name} ({len(np.unique(y))} classes)", x, y, top, _integer_pipelines(top))
    if x.dtype.kind != "f" and str(x.dtype) != "bfloat16":
        raise ValueError(f"--data {path}: X is {x.dtype}; save uint8, uint16 or a float dtype")
    if not np.isfinite(x.astype(np.float64)).all():
        raise ValueError(f"--data {path}: X holds NaN or inf; drop those samples and save again")
    return Task(p.name, f"classify y from {p.name} ({len(np.unique(y))} classes)", x, y, None, _float_pipelines())


def load_task(name: str) -> Task:
    """A bundled data set by name (module table) or an ``.npz`` file with ``X`` and ``y``."""
    if not isinstance(name, (str, Path)):
        raise TypeError(f"data must be names or .npz paths, got {type(name).__name__}")
    name = str(name)
    if name in TABULAR:
        try:
            from sklearn import datasets
        except ImportError as e:
            raise Unavailable(f"data {name!r} needs scikit-learn (pip install scikit-learn)") from e
        b = getattr(datasets, f"load_{name}")()
        return Task(name, _TASKS[name], np.ascontiguousarray(b.data, np.float64), np.asarray(b.target), None, _float_pipelines())
    if name in CAMERAS:
        return _camera(name)
    if name.lower().endswith((".npz", ".npy")) or Path(name).exists():
        return _file(name)
    raise ValueError(f"data={name!r} is not one of: {', '.join(NAMES)} (or an .npz file with arrays X and y)")


# --------------------------------------------------------------------------
# moves
# --------------------------------------------------------------------------


def one_step(x: np.ndarray, top: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(moved, movable): every element moved one step (module docstring), and
    per feature whether it has a step (False for a constant float feature)."""
    if top is not None:
        xi = x.astype(np.int64)
        return np.where(xi >= top, xi - 1, xi + 1).astype(x.dtype), np.ones(x.shape[1], bool)
    moved = x.copy()
    movable = np.zeros(x.shape[1], bool)
    for j in range(x.shape[1]):
        col = x[:, j]
        u = np.unique(col)
        if u.size < 2:
            continue
        k = np.searchsorted(u, col)
        moved[:, j] = np.where(k + 1 < u.size, u[np.minimum(k + 1, u.size - 1)], u[u.size - 2])
        movable[j] = True
    return moved, movable


# --------------------------------------------------------------------------
# the model, in float32
# --------------------------------------------------------------------------


def train(x_ref: np.ndarray, y: np.ndarray, seed: int = 0):
    """The fitted scikit-learn model of the module table, trained with one BLAS thread."""
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits
    except ImportError as e:
        raise Unavailable("the sensitivity model needs scikit-learn (pip install scikit-learn)") from e

    model = LogisticRegression(C=1.0, max_iter=MAX_ITER, random_state=seed)
    # One BLAS thread: the coefficients then do not depend on the thread count (they
    # differ in the last bits between 1 and 2 threads, and with them the bit-level
    # answers), and small lbfgs problems run 20x faster than two threads that spin
    # on a shared machine (measured: digits 0.15 s against 3 s).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("error", ConvergenceWarning)  # a half-trained model would be a silent wrong number
        try:
            model.fit(x_ref, y)
        except ConvergenceWarning:
            raise ValueError(f"the model did not converge in {MAX_ITER} iterations on inputs of shape {x_ref.shape}; "
                             "normalise the features (e.g. standardize(axis=0)) or check the labels") from None
    return model


def model_name(seed: int) -> str:
    return f"LogisticRegression(C=1.0, max_iter={MAX_ITER}, random_state={seed})"


@dataclasses.dataclass(frozen=True, eq=False)
class Float32Model:
    """``coef_`` and ``intercept_`` rounded to float32; the arithmetic of the module table."""

    w: np.ndarray  # (K, F) float32
    b: np.ndarray  # (K,) float32

    @classmethod
    def of(cls, model) -> Float32Model:
        return cls(np.ascontiguousarray(model.coef_, np.float32), np.ascontiguousarray(model.intercept_, np.float32))

    def prefix_logits(self, x32: np.ndarray, keep: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """(prefix, logits) of float32 inputs (n, F): prefix[j] = the running sums
        before feature j, (F, n, K) (None unless ``keep``); logits (n, K)."""
        n, f = x32.shape
        acc = np.repeat(self.b[None, :], n, axis=0)
        prefix = np.empty((f, n, self.b.size), np.float32) if keep else None
        for j in range(f):
            if keep:
                prefix[j] = acc
            acc = acc + x32[:, j, None] * self.w[None, :, j]
        return prefix, acc

    def proba(self, z: np.ndarray) -> np.ndarray:
        """(n, classes) float32 probabilities from (n, K) float32 logits."""
        one = np.float32(1)
        if z.shape[1] == 1:
            with np.errstate(over="ignore"):  # exp(-z) = inf for z < -88.7: p1 = 0, as it should
                p1 = one / (one + np.exp(-z[:, 0]))
            return np.stack([one - p1, p1], axis=1)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        s = e[:, 0].copy()
        for k in range(1, e.shape[1]):
            s = s + e[:, k]
        return e / s[:, None]


def count_unchanged(stored: np.ndarray, moved: np.ndarray, movable: np.ndarray, model: Float32Model) -> tuple[int, int, int, int]:
    """(moves, input unchanged, output unchanged, class unchanged) over every
    sample and movable feature: ``stored`` is the pipeline's output of the data,
    ``moved`` its output of the one-step moved data (element by element)."""
    bits = f"u{stored.dtype.itemsize}"
    same_in = stored.view(bits) == moved.view(bits)
    x32 = stored.astype(np.float32)
    m32 = moved.astype(np.float32)
    prefix, z = model.prefix_logits(x32)
    p = model.proba(z)
    pbits = p.view(np.uint32)
    cls = np.argmax(p, axis=1)
    n, f = stored.shape
    moves = n * int(movable.sum())
    n_in = n_out = n_cls = 0
    for j in np.flatnonzero(movable):
        rows = np.flatnonzero(~same_in[:, j])
        unchanged = n - rows.size
        n_in += unchanged
        if not rows.size:
            n_out += unchanged
            n_cls += unchanged
            continue
        acc = prefix[j][rows] + m32[rows, j, None] * model.w[None, :, j]
        for k in range(j + 1, f):
            acc = acc + x32[rows, k, None] * model.w[None, :, k]
        q = model.proba(acc)
        n_out += unchanged + int((q.view(np.uint32) == pbits[rows]).all(axis=1).sum())
        n_cls += unchanged + int((np.argmax(q, axis=1) == cls[rows]).sum())
    return moves, n_in, n_out, n_cls


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------


def reference_pipeline(pipe: Pipeline) -> Pipeline:
    """The pipeline the model is trained on: casts removed, transforms into float64 (module table)."""
    steps = []
    for s in pipe.steps:
        if s.kind == "cast":
            continue
        if s.kind == "transform" and s.name not in ("quantize", "dequantize"):
            steps.append(step(s.name, **{**dict(s.options), "compute_dtype": "float64", "output_dtype": "float64"}))
        else:
            steps.append(s)
    if not steps or steps[-1].output_dtype != "float64":
        steps.append(step("cast", output_dtype="float64"))
    return Pipeline(tuple(steps))


def _as_pipeline(spec) -> Pipeline:
    if isinstance(spec, Pipeline):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"pipelines must be spec strings or Pipeline objects, got {type(spec).__name__}")
    return pipeline(spec)


def sensitivity(data=None, pipelines=None, *, seed: int = 0) -> list[Row]:
    """One :class:`Row` per data set and pipeline (module docstring).

    ``data``: names or ``.npz`` paths (default :data:`DEFAULT_DATA`);
    ``pipelines``: specs or Pipeline objects replacing every data set's
    defaults.  Unknown names raise ``ValueError`` listing the valid ones; bad
    specs raise the pipeline's own error, before any data is loaded."""
    if isinstance(data, (str, Path)):
        data = [data]
    if isinstance(pipelines, (str, Pipeline)):
        pipelines = [pipelines]
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    given = None if pipelines is None else [_as_pipeline(p) for p in pipelines]
    if given is not None and not given:
        raise ValueError("pipelines= is empty; give at least one spec, or None for the defaults")
    names = list(DEFAULT_DATA if data is None else data)
    for n in names:  # every name checked before anything is loaded
        if isinstance(n, str) and n not in NAMES and not n.lower().endswith((".npz", ".npy")) and not Path(n).exists():
            load_task(n)
    with _one_thread():
        return [row for n in names for row in _rows(load_task(n), given, seed)]


@contextlib.contextmanager
def _one_thread():
    """numba and BLAS on one thread for the run, restored after.  The arrays are
    small (at most 262,144 elements): two threads buy nothing, and on a busy
    machine each parallel launch waits for both to be scheduled (measured: 0.1 s
    a call against 1 ms for a per-feature min/max of breast_cancer)."""
    import numba

    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError as e:
        raise Unavailable("the sensitivity model needs scikit-learn (pip install scikit-learn)") from e
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(old)


def _rows(task: Task, given, seed: int) -> list[Row]:
    """The rows of one data set: its pipelines (``given`` or its defaults), one model per reference."""
    moved, movable = one_step(task.x, task.top)
    if not movable.any():
        raise ValueError(f"data {task.name!r}: every feature takes a single value, so no input can move one step")
    models: dict = {}
    rows = []
    for pipe in given or [pipeline(s) for s in task.pipelines]:
        fitted = pipe.fit(task.x)
        stored = fitted.transform(task.x)
        stored_moved = fitted.transform(moved)
        ref = reference_pipeline(pipe)
        if ref.spec not in models:
            x_ref = ref.fit(task.x).transform(task.x)
            model = train(x_ref, task.y, seed)
            models[ref.spec] = (model, Float32Model.of(model), float(model.score(x_ref, task.y)))
        model, m32, acc_exact = models[ref.spec]
        moves, n_in, n_out, n_cls = count_unchanged(stored, stored_moved, movable, m32)
        pred = model.classes_[np.argmax(m32.proba(m32.prefix_logits(stored.astype(np.float32), keep=False)[1]), axis=1)]
        rows.append(Row(
            data=task.name, task=task.task, model=model_name(seed), pipeline=pipe.spec, reference=ref.spec,
            storage_dtype=str(stored.dtype), n_samples=task.x.shape[0], n_features=task.x.shape[1],
            moves=moves, input_unchanged=n_in / moves, output_unchanged=n_out / moves, class_unchanged=n_cls / moves,
            accuracy_exact=acc_exact, accuracy_stored=float(np.mean(pred == task.y)),
        ))
    return rows


__all__ = ["sensitivity", "Row", "Task", "load_task", "one_step", "train", "Float32Model", "count_unchanged",
           "reference_pipeline", "NAMES", "DEFAULT_DATA", "SCHEMA"]
