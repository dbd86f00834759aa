"""Table lookup for 8-bit inputs (layer 1): any elementwise map of uint8 data.

A transform of uint8 data is a function of 256 possible inputs.  Evaluating
it once on ``arange(256)`` with the very kernel that would run on the data and
then looking every element up in that table gives the same bits, and turns a
kernel bound by emulated float16 or float64 arithmetic into a memory-bound one.

The lookup itself uses AVX-512 VBMI ``vpermi2b`` (``llvm.x86.avx512.vpermi2var.qi.512``):
per 64 inputs and per byte of the output, two 128-entry permutes and one
select on the index's top bit; multi-byte outputs are stored as byte planes and
interleaved by shuffles.  Without VBMI (:data:`AVAILABLE` is False) callers keep
their direct kernel.  The table is ``256 * itemsize`` bytes: no temporary of
the data's size.

16-bit inputs are not looked up: a 65,536-entry table needs a scalar gather,
measured at 0.3-0.65 of the memory roofline here, which loses to the direct
kernel in most float16-compute variants and wins only narrowly elsewhere.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._tags import Tag, tag_name
from ._jit import kernel
from .codecs import target_has


AVAILABLE = target_has("avx512vbmi")

_LANES = 64  # uint8 indices per vpermi2b
_V64 = ir.VectorType(ir.IntType(8), _LANES)


def _zip(builder, a, b, lanes):
    """Interleave two vectors of ``lanes`` elements: a0 b0 a1 b1 ..."""
    mask = [v for j in range(lanes) for v in (j, lanes + j)]
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), 2 * lanes), mask))


@intrinsic
def _lookup64_channels(typingctx, x, start, planes, chan, phase, ntag, out):
    """out[start:start+64] = table[x[start:start+64], lane channel] for ``nfeat``
    interleaved tables (channel-last data: element ``i`` reads table ``i % nfeat``),
    given as byte planes: ``planes`` is uint8 (nfeat, itemsize, 256), row (c, b)
    holding byte b (little-endian) of every entry of table c.  Each plane is looked
    up with two ``vpermi2b`` (entries 0-127 and 128-255, chosen by bit 7 of the
    index) per table, the lane's table selected by its channel, read from
    ``chan[phase * 64 + lane]`` (``phase = start % nfeat``); then the rows are
    zipped pairwise, doubling the element width each round, into the outputs."""
    if not (isinstance(out, types.Array) and x.dtype == types.uint8 and planes.dtype == types.uint8):
        return None
    nbytes = out.dtype.bitwidth // 8
    nfeat = int(tag_name(ntag, "nfeat"))

    def codegen(context, builder, sig, args):
        xa = context.make_array(sig.args[0])(context, builder, args[0])
        pa = context.make_array(sig.args[2])(context, builder, args[2])
        ca = context.make_array(sig.args[3])(context, builder, args[3])
        oa = context.make_array(sig.args[6])(context, builder, args[6])
        idx = builder.load(builder.bitcast(builder.gep(xa.data, [args[1]]), _V64.as_pointer()), align=1)
        off = builder.mul(args[4], ir.Constant(args[4].type, _LANES))
        lanes = builder.load(builder.bitcast(builder.gep(ca.data, [off]), _V64.as_pointer()), align=1)
        permute = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V64, [_V64, _V64, _V64]), "llvm.x86.avx512.vpermi2var.qi.512"
        )
        upper = builder.icmp_signed("<", idx, ir.Constant(_V64, None))
        table = builder.bitcast(pa.data, _V64.as_pointer())
        is_chan = [builder.icmp_unsigned("==", lanes, ir.Constant(_V64, [c] * _LANES)) for c in range(nfeat)]
        rows = []
        for b in range(nbytes):
            res = None
            for c in range(nfeat):
                base = 4 * (c * nbytes + b)
                q = [builder.load(builder.gep(table, [ir.Constant(ir.IntType(64), base + j)]), align=1) for j in range(4)]
                low = builder.call(permute, [q[0], idx, q[1]])
                high = builder.call(permute, [q[2], idx, q[3]])
                val = builder.select(upper, high, low)
                res = val if res is None else builder.select(is_chan[c], val, res)
            rows.append(res)
        width = 8
        while len(rows) > 1:
            width *= 2
            rows = [
                builder.bitcast(_zip(builder, rows[j], rows[j + 1], _LANES), ir.VectorType(ir.IntType(width), _LANES))
                for j in range(0, len(rows), 2)
            ]
        dst = builder.bitcast(builder.gep(oa.data, [args[1]]), rows[0].type.as_pointer())
        builder.store(rows[0], dst, align=1)
        return context.get_dummy_value()

    return types.void(x, start, planes, chan, phase, ntag, out), codegen


@kernel
def _apply_planes_channels(x, out, planes, chan, ntag, table):
    nfeat = table.shape[1]
    nblocks = x.size // 64
    for blk in prange(nblocks):
        _lookup64_channels(x, blk * 64, planes, chan, (blk * 64) % nfeat, ntag, out)
    for i in range(nblocks * 64, x.size):
        out[i] = table[x[i], i % nfeat]


MAX_CHANNELS = 4  # each channel costs one lookup per lane: beyond 4 the gather wins


def apply_tables(x: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = table[x[i], i % nfeat]`` for flat uint8 ``x`` (channel-last data)
    and a (256, nfeat) ``table`` of ``out``'s dtype, 1 <= nfeat <= MAX_CHANNELS.
    Requires :data:`AVAILABLE`."""
    _tables(x, table, out)


def _tables(x: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    nfeat = table.shape[1]
    t = np.ascontiguousarray(table.T)  # (nfeat, 256)
    planes = np.ascontiguousarray(t.view(np.uint8).reshape(nfeat, 256, t.itemsize).transpose(0, 2, 1))
    chan = ((np.arange(nfeat)[:, None] + np.arange(64)[None, :]) % nfeat).astype(np.uint8).reshape(-1)
    _apply_planes_channels(x, out, planes.reshape(-1), chan, Tag("nfeat", str(nfeat)), np.ascontiguousarray(table))


def apply_table(x: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = table[x]`` for flat uint8 ``x`` and a 256-entry ``table`` whose
    dtype is ``out``'s (1, 2, 4 or 8 bytes).  ``out`` may be ``x`` itself.
    Requires :data:`AVAILABLE`.  (One channel of :func:`apply_tables`: the
    channel selects compile away.)"""
    _tables(x, np.ascontiguousarray(table).reshape(256, 1), out)
