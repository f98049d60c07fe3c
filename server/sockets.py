"""The ROUTER socket clients connect to: the server's and the relay's front door."""

from __future__ import annotations

import zmq

from .protocol import Limits


def front_door(ctx: zmq.Context, limits: Limits) -> zmq.Socket:
    """The ROUTER socket clients connect to (the server's, and the relay's)."""
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.MAXMSGSIZE, limits.max_frame_bytes)
    router.setsockopt(zmq.SNDHWM, 1000)  # a client that never reads loses messages
    # sending to a vanished peer raises EHOSTUNREACH instead of dropping silently: that is
    # how a killed client's jobs are found and cancelled
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.setsockopt(zmq.HEARTBEAT_IVL, 2000)
    # a host UI thread may stall for a while between polls: only a minute of silence from a
    # peer (ZMTP heartbeats unanswered) drops its connection and so cancels its jobs
    router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 60000)
    return router
