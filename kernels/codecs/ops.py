"""The codec operations kernels call, as generic functions of a codec tag.

Each is implemented per dtype by the row's family (``dispatch`` registers the
Numba overloads); families call one another's operations through these names.
"""


def decode(codec, raw):
    """Storage value -> float32 (float64 for float64), exact."""


def encode(codec, v):
    """float32/float64 value -> storage value, one correctly rounded step."""


def encode_u(codec, v, u):
    """``encode`` with 64 random bits ``u`` (a stochastic rounding policy reads them)."""


def to_compute(codec, v):
    """A decoded value rounded into a compute dtype, held in its arithmetic type."""


def to_compute_from(cin, codec, v):
    """``to_compute`` for a value decoded from codec ``cin``; the rounding is
    skipped at compile time when every ``cin`` value is exact in the compute
    dtype (uint8 in float16, float16 in float32, ...)."""


def rnd(codec, v):
    """Round an arithmetic result to the compute dtype (emulated 16-bit arithmetic)."""


def add_c(codec, a, b):
    """a + b rounded once to the compute dtype (``rnd(codec, a + b)`` under the default policy)."""


def sub_c(codec, a, b):
    """a - b rounded once to the compute dtype (``rnd(codec, a - b)`` under the default policy)."""


def as_arith(codec, v):
    """A number converted to the arithmetic type of a compute codec (no 16-bit rounding)."""


def fma_c(codec, a, b, c):
    """a * b + c rounded once to the compute dtype."""


def order_key(codec, raw):
    """A signed integer whose order is the value order (integer min/max vectorise,
    float min/max without fast-math do not).  NaNs land outside ``key_range``."""


def key_to_raw(codec, k):
    """Inverse of ``order_key``: the storage value whose key is k (enumerates domains)."""


def key_is_nan(codec, k, kneg, kpos):
    """Whether an order key is a NaN's (never, for integer codecs: no test emitted)."""


def is_overflow(codec, v, y):
    """True when a finite input value v ended as an infinite encoded output y
    (branch-free, so the loops that reduce it vectorise)."""
