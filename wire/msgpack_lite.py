"""The MessagePack subset our protocol uses, in pure Python (no msgpack package needed).

Host applications (Krita, GIMP) embed a Python without msgpack, so the plug-ins carry this.
`packb` produces exactly the bytes of ``msgpack.packb(obj, use_bin_type=True)`` and `unpackb`
returns what ``msgpack.unpackb(data, raw=False, strict_map_key=False)`` would, for: nil, bool,
int (up to 64 bits), float, str, bin, array and map. Ext types are not supported.

`unpackb` treats its input as hostile: every malformed input raises `ValueError`, and every
declared length is checked against the bytes that remain before anything is allocated.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["packb", "unpackb"]

# msgpack's own default; it turns a self-referencing container into an error, not a crash.
_PACK_DEPTH_LIMIT = 511
_MAX_LEN = 0xFFFFFFFF  # the largest length any msgpack header can declare

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


def packb(obj: object) -> bytes:
    """Serialise `obj`; raises TypeError for types outside the subset."""
    parts: list[Any] = []
    _pack(obj, parts, 0)
    # One join at the end: a large bin payload is copied once, not once per nesting level.
    return b"".join(parts)


def _pack_int(value: int) -> bytes:
    # Smallest encoding first, in the same order as msgpack's packer.
    if value >= 0:
        if value < 0x80:
            return _U8.pack(value)
        if value <= 0xFF:
            return b"\xcc" + _U8.pack(value)
        if value <= 0xFFFF:
            return b"\xcd" + _U16.pack(value)
        if value <= 0xFFFFFFFF:
            return b"\xce" + _U32.pack(value)
        if value <= 0xFFFFFFFFFFFFFFFF:
            return b"\xcf" + _U64.pack(value)
    else:
        if value >= -32:
            return _U8.pack(value & 0xFF)
        if value >= -0x80:
            return b"\xd0" + _I8.pack(value)
        if value >= -0x8000:
            return b"\xd1" + _I16.pack(value)
        if value >= -0x80000000:
            return b"\xd2" + _I32.pack(value)
        if value >= -0x8000000000000000:
            return b"\xd3" + _I64.pack(value)
    # Same exception type as msgpack for the same condition.
    raise OverflowError(f"int {value} does not fit in 64 bits")


def _header(n: int, fix_base: int, fix_max: int, codes: bytes, kind: str) -> bytes:
    """Length header: the fix form up to fix_max, else 8-bit (when codes has 3), 16- or 32-bit."""
    if n <= fix_max:
        return _U8.pack(fix_base | n)
    if len(codes) == 3:
        if n <= 0xFF:
            return codes[0:1] + _U8.pack(n)
        codes = codes[1:]
    if n <= 0xFFFF:
        return codes[0:1] + _U16.pack(n)
    if n <= _MAX_LEN:
        return codes[1:2] + _U32.pack(n)
    raise ValueError(f"{kind} of length {n} is too large for msgpack")


def _pack(obj: object, parts: list[Any], depth: int) -> None:
    if depth > _PACK_DEPTH_LIMIT:
        raise ValueError(f"nesting deeper than {_PACK_DEPTH_LIMIT} levels (a cycle?)")
    if obj is None:
        parts.append(b"\xc0")
    elif obj is True:
        parts.append(b"\xc3")
    elif obj is False:
        parts.append(b"\xc2")
    elif isinstance(obj, int):
        parts.append(_pack_int(obj))
    elif isinstance(obj, float):
        parts.append(b"\xcb" + _F64.pack(obj))
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        # str8 (0xd9) has no fixstr-sized counterpart below it, hence the three codes.
        parts.append(_header(len(data), 0xA0, 31, b"\xd9\xda\xdb", "str"))
        parts.append(data)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        if isinstance(obj, memoryview):
            # Byte length, not item count, like msgpack; copy only when not contiguous.
            obj = obj.cast("B") if obj.c_contiguous else obj.tobytes()
        n = len(obj)
        if n <= 0xFF:
            parts.append(b"\xc4" + _U8.pack(n))
        elif n <= 0xFFFF:
            parts.append(b"\xc5" + _U16.pack(n))
        elif n <= _MAX_LEN:
            parts.append(b"\xc6" + _U32.pack(n))
        else:
            raise ValueError(f"bin of length {n} is too large for msgpack")
        parts.append(obj)
    elif isinstance(obj, dict):
        parts.append(_header(len(obj), 0x80, 15, b"\xde\xdf", "map"))
        for key, value in obj.items():
            _pack(key, parts, depth + 1)
            _pack(value, parts, depth + 1)
    elif isinstance(obj, (list, tuple)):
        parts.append(_header(len(obj), 0x90, 15, b"\xdc\xdd", "array"))
        for item in obj:
            _pack(item, parts, depth + 1)
    else:
        raise TypeError(f"cannot serialize {type(obj).__name__!r} object with msgpack_lite")


def unpackb(data: bytes, *, max_depth: int = 32, max_len: int = _MAX_LEN) -> Any:
    """Decode exactly one object from `data` (bytes, bytearray or memoryview).

    max_depth bounds container nesting (a top-level array is depth 1); max_len bounds every
    declared str/bin/array/map length. Raises ValueError for any malformed input.
    """
    if isinstance(data, (bytes, bytearray)):
        buf: Any = data
    else:
        try:
            view = memoryview(data)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"unpackb() needs a bytes-like object, not {type(data).__name__!r}"
            ) from None
        buf = view.cast("B") if view.c_contiguous else view.tobytes()
    decoder = _Decoder(buf, max_depth, max_len)
    try:
        obj = decoder.read(0)
    except RecursionError:
        # Only reachable when the caller raises max_depth past the interpreter's own limit.
        raise ValueError("nesting too deep for this interpreter; lower max_depth") from None
    if decoder.pos != len(buf):
        raise ValueError(
            f"{len(buf) - decoder.pos} trailing byte(s) after the object at offset {decoder.pos}"
        )
    return obj


class _Decoder:
    __slots__ = ("buf", "end", "max_depth", "max_len", "pos")

    def __init__(self, buf: Any, max_depth: int, max_len: int) -> None:
        self.buf = buf
        self.end = len(buf)
        self.pos = 0
        self.max_depth = max_depth
        self.max_len = max_len

    def take(self, n: int) -> int:
        """Consume n bytes and return where they start; ValueError if fewer remain."""
        start = self.pos
        if n > self.end - start:
            raise ValueError(
                f"truncated data: {n} byte(s) needed at offset {start}, {self.end - start} left"
            )
        self.pos = start + n
        return start

    def unpack(self, fmt: struct.Struct) -> Any:
        return fmt.unpack_from(self.buf, self.take(fmt.size))[0]

    def check_len(self, n: int, kind: str, min_item_bytes: int) -> None:
        # Every element takes at least min_item_bytes of input, so this bounds the allocation
        # of a container by the input size before a single element is decoded.
        if n > self.max_len:
            raise ValueError(f"{kind} declares length {n}, more than max_len={self.max_len}")
        left = self.end - self.pos
        if n * min_item_bytes > left:
            raise ValueError(
                f"{kind} at offset {self.pos} declares length {n} but only {left} byte(s) remain"
            )

    def read(self, depth: int) -> Any:
        offset = self.pos
        code = self.buf[self.take(1)]
        if code <= 0x7F:
            return code
        if code >= 0xE0:
            return code - 0x100
        if code <= 0x8F:
            return self.read_map(code & 0x0F, depth)
        if code <= 0x9F:
            return self.read_array(code & 0x0F, depth)
        if code <= 0xBF:
            return self.read_str(code & 0x1F)
        if code == 0xC0:
            return None
        if code == 0xC2:
            return False
        if code == 0xC3:
            return True
        if code == 0xC4:
            return self.read_bin(self.unpack(_U8))
        if code == 0xC5:
            return self.read_bin(self.unpack(_U16))
        if code == 0xC6:
            return self.read_bin(self.unpack(_U32))
        if code == 0xCA:
            return self.unpack(_F32)
        if code == 0xCB:
            return self.unpack(_F64)
        if 0xCC <= code <= 0xD3:
            return self.unpack(_INT_FORMATS[code - 0xCC])
        if code == 0xD9:
            return self.read_str(self.unpack(_U8))
        if code == 0xDA:
            return self.read_str(self.unpack(_U16))
        if code == 0xDB:
            return self.read_str(self.unpack(_U32))
        if code == 0xDC:
            return self.read_array(self.unpack(_U16), depth)
        if code == 0xDD:
            return self.read_array(self.unpack(_U32), depth)
        if code == 0xDE:
            return self.read_map(self.unpack(_U16), depth)
        if code == 0xDF:
            return self.read_map(self.unpack(_U32), depth)
        if code in (0xC7, 0xC8, 0xC9) or 0xD4 <= code <= 0xD8:
            raise ValueError(f"ext type (0x{code:02x}) at offset {offset} is not supported")
        raise ValueError(f"invalid type byte 0x{code:02x} at offset {offset}")

    def read_bin(self, n: int) -> bytes:
        self.check_len(n, "bin", 1)
        start = self.take(n)
        return bytes(self.buf[start : start + n])

    def read_str(self, n: int) -> str:
        self.check_len(n, "str", 1)
        start = self.take(n)
        try:
            return str(self.buf[start : start + n], "utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"invalid UTF-8 in str at offset {start}: {exc.reason}") from None

    def enter(self, depth: int) -> None:
        if depth >= self.max_depth:
            raise ValueError(
                f"containers nested deeper than max_depth={self.max_depth} at offset {self.pos}"
            )

    def read_array(self, n: int, depth: int) -> list[Any]:
        self.enter(depth)
        self.check_len(n, "array", 1)
        return [self.read(depth + 1) for _ in range(n)]

    def read_map(self, n: int, depth: int) -> dict[Any, Any]:
        self.enter(depth)
        self.check_len(n, "map", 2)
        result: dict[Any, Any] = {}
        for _ in range(n):
            offset = self.pos
            key = self.read(depth + 1)
            # Only containers can be unhashable among the types this decoder produces.
            if isinstance(key, (list, dict)):
                raise ValueError(
                    f"map key at offset {offset} is an unhashable {type(key).__name__}"
                )
            result[key] = self.read(depth + 1)
        return result


_INT_FORMATS = (_U8, _U16, _U32, _U64, _I8, _I16, _I32, _I64)
