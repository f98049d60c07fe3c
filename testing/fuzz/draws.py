"""The choices a builder makes (`RandomDraw` from a seed, `HypothesisDraw` from hypothesis) and
the values that break things: boundary numbers, odd strings, nesting, type confusion.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, TypeVar

import msgpack

from .words import MAX_DEPTH

T = TypeVar("T")


# --- random sources ------------------------------------------------------------------------------


class Draw:
    """The choices a builder makes; subclasses take them from a seed or from hypothesis."""

    def int(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def choice(self, options: Sequence[T]) -> T:
        return options[self.int(0, len(options) - 1)]

    def chance(self, p: float) -> bool:
        return self.int(0, 999) < p * 1000

    def bytes(self, n: int) -> bytes:
        raise NotImplementedError


class RandomDraw(Draw):
    def __init__(self, seed: int | str) -> None:
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)


class HypothesisDraw(Draw):
    """Draws from ``st.data()``: hypothesis steers them to edge cases and shrinks failures."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))

    def choice(self, options: Sequence[T]) -> T:
        return self.data.draw(self.st.sampled_from(options))

    def chance(self, p: float) -> bool:
        # hypothesis favours small integers (and shrinks towards them): count down from the top
        # so that "yes" keeps about its probability and shrinking goes towards "no"
        return self.int(0, 999) >= 1000 - p * 1000

    def bytes(self, n: int) -> bytes:
        if n > 512:  # hypothesis keeps examples small; long filler need not be drawn
            return pattern(n, self.int(0, 255))
        return self.data.draw(self.st.binary(min_size=n, max_size=n))


def pattern(n: int, seed: int = 0) -> bytes:
    """``n`` deterministic bytes."""
    block = bytes((i * 7 + seed) & 0xFF for i in range(4096))
    return (block * (n // 4096 + 1))[:n]


# --- junk values ---------------------------------------------------------------------------------

# fmt: off
BOUNDARY_INTS = (
    0, 1, -1, 2, 3, 4, 5, 8, 9, 12, 63, 64, 65, 255, 256, 4096, 4097, 65535, 65536, 2**31 - 1,
    2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**31), -(2**63),
)
# fmt: on
# fmt: off
SPECIAL_FLOATS = (
    0.0, -0.0, 0.1, 0.19999, 0.2, 0.5, 1.0, 2.0, 1.5, -1.0, 1e-320, 1e308, -1e308, math.inf,
    -math.inf, math.nan,
)
# fmt: on
# fmt: off
STRINGS = (
    "", "x", "1", "0", "true", "null", "uint8", "uint16", "float32", "float64", "int8",
    "UINT8", "uint8 ", "ping", "status", "submit", "cancel", "echo", "PING", "fast", "paper",
    "quality", "none", "luminance", "noise", "device", "cuda", "../../etc/passwd", "%s%n",
    "\x00", "é", "字", "\U0001f4a5", "a" * 64, "a" * 65, "z" * 1000,
)
# fmt: on


def forbidden_value(draw: Draw) -> Any:
    """A value the protocol's msgpack subset does not have (ext, non-str keys, bin)."""
    kind = draw.int(0, 4)
    if kind == 0:
        return msgpack.ExtType(draw.int(0, 127), draw.bytes(draw.int(0, 8)))
    if kind == 1:
        return msgpack.Timestamp(draw.int(0, 2**32 - 1), 0)
    if kind == 2:
        return {draw.choice((1, -1, 0)): "x"}
    if kind == 3:
        return {(1, 2): "tuple key"} if draw.chance(0.5) else {None: 1}
    return draw.bytes(draw.int(1, 16))  # non-empty bin


def junk(draw: Draw, depth: int = 0) -> Any:
    """Any value a hostile client might put anywhere."""
    kind = draw.int(0, 12 if depth < 3 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return draw.chance(0.5)
    if kind in (2, 3):
        return draw.choice(BOUNDARY_INTS)
    if kind == 4:
        return draw.choice(SPECIAL_FLOATS)
    if kind in (5, 6):
        return draw.choice(STRINGS)
    if kind == 7:
        return b""  # an empty bin
    if kind == 8:
        return forbidden_value(draw) if draw.chance(0.5) else draw.int(-(2**63), 2**64 - 1)
    if kind in (9, 10):
        return [junk(draw, depth + 1) for _ in range(draw.int(0, 3))]
    if kind == 11:
        return {draw.choice(STRINGS): junk(draw, depth + 1) for _ in range(draw.int(0, 3))}
    return nest(draw.int(MAX_DEPTH - 3, MAX_DEPTH + 2), draw.chance(0.5))


def nest(levels: int, leaf: bool) -> Any:
    """``levels`` nested lists (with a 1 inside, or empty)."""
    value: Any = [1] if leaf else []
    for _ in range(levels - 1):
        value = [value]
    return value


def confuse(draw: Draw, value: Any) -> Any:
    """A value of another type than ``value``, or a boundary value of the same type."""
    if isinstance(value, bool):
        return draw.choice((int(value), str(value).lower(), None, [value], 1.0))
    if isinstance(value, int):
        near = (-value, 0, -1, value + 1, value - 1, 2**63, 2**64 - 1, -(2**63))
        other = (str(value), float(value), value + 0.5, bool(value), None, [value], {"v": value})
        return draw.choice((*other, *map(_fit, near), math.nan, math.inf, b""))
    if isinstance(value, float):
        whole = int(value) if math.isfinite(value) else 0
        return draw.choice((str(value), whole, True, None, [value], math.nan, math.inf))
    if isinstance(value, str):
        return draw.choice(
            (
                value.upper(),
                value + " ",
                value[:-1],
                "",
                value * 40,
                len(value),
                None,
                [value],
                {value: value},
                value.encode() or b"",
                True,
            )
        )
    if isinstance(value, list):
        return draw.choice(
            (None, {}, "list", value[:-1], [*value, *value], [value], len(value), value * 9)
        )
    if isinstance(value, dict):
        return draw.choice((None, [], "map", list(value.values()), [value], 0))
    return junk(draw)


def _fit(value: int) -> int:
    """An int msgpack can carry: -2**63 .. 2**64 - 1."""
    return min(max(value, -(2**63)), 2**64 - 1)
