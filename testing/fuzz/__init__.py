"""Malformed, truncated, oversized and type-confused messages for a real server, and the oracle:
the one way to build hostile traffic, shared by tests/server/test_fuzz.py (hypothesis draws) and
benchmarks/soak.py and attacks.py (a seeded random source, for ten thousand messages and more).

* `words`: what docs/protocol.md says (the numbers, the vocabulary, the error codes).
* `draws`: ``RandomDraw(seed)`` or ``HypothesisDraw(data)``, and the junk values they pick.
* `requests`: ``build_case(draw, ctx, rid)``, a valid request of each type mutated one to three
  times, with the replies the document allows for it.
* `oracle`: ``expectation(frames, ctx)``, those replies, written from the document.
* `session`: ``Session``, a pyzmq DEALER that sends one case at a time and checks its reply
  (and a rare valid submit's job); the reference job run before and after.
* `raw`: garbage below ZeroMQ, ``raw_case`` and ``run_raw_batch``, floods and held connections.

The package's names below are its public face: callers write ``fuzz.build_case``.
"""

from .draws import HypothesisDraw, RandomDraw, nest
from .raw import (
    IdleFlood,
    change,
    drop_connections,
    flood_watched,
    hello_flood,
    hold_connections,
    raw_case,
    raw_case_ping,
    raw_ping,
    rss_of,
    run_raw_batch,
)
from .requests import Request, add_image, build_case, pad_to
from .session import Outcome, Session, reference_result_ok, warm_up
from .words import CODES, MAX_HEADER_BYTES, Context

__all__ = [
    "CODES",
    "MAX_HEADER_BYTES",
    "Context",
    "HypothesisDraw",
    "IdleFlood",
    "Outcome",
    "RandomDraw",
    "Request",
    "Session",
    "add_image",
    "build_case",
    "change",
    "drop_connections",
    "flood_watched",
    "hello_flood",
    "hold_connections",
    "nest",
    "pad_to",
    "raw_case",
    "raw_case_ping",
    "raw_ping",
    "reference_result_ok",
    "rss_of",
    "run_raw_batch",
    "warm_up",
]
