"""Compile-time tags: how one generic Numba kernel is specialised per codec and formula.

A `Tag` is a tiny Python object whose Numba type carries its name.  A kernel
takes tags as ordinary arguments; `@overload` implementations read the name
from the *type* and return the matching code, so every (input codec, compute
codec, formula, output codec) combination is a separate machine-code
specialisation of one source kernel -- no runtime branches in the inner loop
and no hand-written copy per dtype pair.  Tags are hashable types, so
`cache=True` caches each specialisation on disk.
"""

from __future__ import annotations

from numba.core import types
from numba.core.imputils import lower_constant
from numba.extending import NativeValue, models, register_model, typeof_impl, unbox


class Tag:
    """A named compile-time constant passed into Numba kernels."""

    __slots__ = ("kind", "name")

    def __init__(self, kind: str, name: str):
        self.kind = kind
        self.name = name

    def __repr__(self) -> str:
        return f"Tag({self.kind}:{self.name})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Tag) and (self.kind, self.name) == (other.kind, other.name)

    def __hash__(self) -> int:
        return hash((self.kind, self.name))


class TagType(types.Type):
    def __init__(self, kind: str, tag: str):
        self.kind = kind
        self.tag = tag
        super().__init__(name=f"Tag({kind}:{tag})")


@typeof_impl.register(Tag)
def _typeof_tag(val, c):
    return TagType(val.kind, val.name)


# The value carries no data: everything is in the type.
register_model(TagType)(models.OpaqueModel)


@unbox(TagType)
def _unbox_tag(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


@lower_constant(TagType)
def _constant_tag(context, builder, ty, pyval):
    # a module-level Tag used inside a kernel: no data, only its type matters
    return context.get_dummy_value()


def tag_name(typ, kind: str) -> str:
    """Name of a tag type inside an overload, or raise a typing error."""
    if not isinstance(typ, TagType) or typ.kind != kind:
        raise TypeError(f"expected a {kind} tag, got {typ}")
    return typ.tag
