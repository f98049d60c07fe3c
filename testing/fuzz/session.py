"""A pyzmq DEALER that sends one case at a time and checks the reply against the oracle
(`Session`), following a rare valid submit's job to its end; and the reference job run before
and after a fuzzing run (the engine must give the same pixels).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import zmq

from stylebridge.server.client import present_token

from .oracle import Expect, is_int
from .requests import CONTENT_SHAPES, STYLE_SHAPES, Case, Request, add_image
from .words import ANY, CODES, ERROR_KEYS, ITEMSIZE, PRESETS, VERSION

# --- sending and checking ------------------------------------------------------------------------


@dataclass
class Outcome:
    label: str  # the first reply's type, or the error code
    problems: list[str]
    job_final: str | None = None  # for an accepted submit: how the job ended


class Session:
    """One pyzmq DEALER to the server; each case gets its reply checked before the next."""

    def __init__(self, endpoint: str, token: str, timeout: float = 15.0) -> None:
        self.endpoint, self.token, self.timeout = endpoint, token, timeout
        self.ctx = zmq.Context.instance()
        self.sock = self._connect()
        self.sent = 0
        self.replies = 0
        self.past_ids: set[Any] = set()  # ids of the cases already answered
        self._rid = 10**6
        self.counts: dict[str, int] = {}
        self.finals: dict[str, int] = {}
        self.ids = iter(range(10**9))

    def next_rid(self) -> int:
        """A fresh id for the next case (far from the small ints the mutations write)."""
        self._rid += 1
        return self._rid

    def _connect(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        present_token(sock, self.token, None)
        sock.connect(self.endpoint)
        return sock

    def close(self) -> None:
        self.sock.close(0)

    def recv(self, timeout: float) -> list[bytes] | None:
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        self.replies += 1
        return self.sock.recv_multipart()

    def request(self, header: dict[str, Any], blobs: Sequence[bytes] = ()) -> dict[str, Any]:
        """A well-formed request (status, ping) and its reply header."""
        rid = f"ctl-{next(self.ids)}"
        self.sock.send_multipart([msgpack.packb({"v": VERSION, "id": rid, **header}), *blobs])
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            frames = self.recv(deadline - time.monotonic())
            if frames is None:
                break
            reply = msgpack.unpackb(frames[0])
            if reply.get("id") == rid:
                return reply
        raise AssertionError(f"no reply to {header.get('type')} within {self.timeout} s")

    def run_job(
        self, header: dict[str, Any], blobs: Sequence[bytes], timeout: float = 120.0
    ) -> tuple[dict[str, Any], list[bytes]]:
        """Submit a well-formed job and wait for its final message (result, error, cancelled)."""
        rid = f"job-{next(self.ids)}"
        head = {"v": VERSION, "type": "submit", "id": rid, **header}
        self.sock.send_multipart([msgpack.packb(head), *blobs])
        deadline = time.monotonic() + timeout
        while (frames := self.recv(max(0.0, deadline - time.monotonic()))) is not None:
            reply = msgpack.unpackb(frames[0])
            if reply.get("id") == rid and reply.get("type") in ("result", "error", "cancelled"):
                return reply, frames
        raise AssertionError(f"job {rid} did not end within {timeout} s")

    def check(self, case: Case) -> Outcome:
        self.sock.send_multipart(case.frames)
        self.sent += 1
        outcome = check_reply(self, case)
        self.past_ids.add(case.rid)
        self.counts[outcome.label] = self.counts.get(outcome.label, 0) + 1
        if outcome.job_final:
            self.finals[outcome.job_final] = self.finals.get(outcome.job_final, 0) + 1
        return outcome

    def leftovers(self, wait: float = 0.5) -> list[bytes]:
        """Messages nobody asked for (a second reply to some request, say)."""
        extra = []
        while (frames := self.recv(wait)) is not None:
            extra.append(frames[0][:200])
            wait = 0.1
        return extra


def _parse(frames: list[bytes]) -> tuple[dict[str, Any] | None, str | None]:
    try:
        header = msgpack.unpackb(frames[0], raw=False)
    except Exception as exc:
        return None, f"reply is not msgpack: {exc}"
    if not isinstance(header, dict):
        return None, f"reply header is not a map: {header!r}"
    return header, None


def _field_ok(allowed: set, name: Any) -> bool:
    return ANY in allowed or name in allowed


def check_reply(session: Session, case: Case) -> Outcome:
    exp = case.expect
    problems: list[str] = []
    deadline = time.monotonic() + session.timeout
    while True:
        frames = session.recv(max(0.0, deadline - time.monotonic()))
        if frames is None:
            problems.append(f"no reply within {session.timeout} s: {case.describe()}")
            return Outcome("no reply", problems)
        reply, problem = _parse(frames)
        if reply is None:
            return Outcome("garbled", [problem or "?"])
        rid = reply.get("id")
        stale = not any(_same(rid, r) for r in exp.rids) and rid in session.past_ids
        if not (stale and isinstance(rid, int)):
            break
        problems.append(f"a message about an earlier request, already answered: {reply!r}")
    kind = reply.get("type")
    label = str(reply.get("code") if kind == "error" else kind)
    where = f"{case.describe()} -> {reply!r}"[:1500]
    if not any(_same(reply.get("id"), rid) for rid in exp.rids):
        problems.append(f"reply id {reply.get('id')!r}, expected one of {exp.rids!r}: {where}")
    if reply.get("v") != VERSION:
        problems.append(f"reply without v 1: {where}")
    if kind == "error":
        code, name = reply.get("code"), reply.get("field")
        if set(reply) != ERROR_KEYS:
            problems.append(f"error reply keys {sorted(reply)}: {where}")
        if code not in CODES:
            problems.append(f"undocumented code {code!r}: {where}")
        if not isinstance(reply.get("message"), str) or not reply.get("message"):
            problems.append(f"error without a message: {where}")
        if name is not None and not isinstance(name, str):
            problems.append(f"field is not a string: {where}")
        if reply.get("job") is not None:
            problems.append(f"an error before any job names a job: {where}")
        if code not in exp.allowed:
            problems.append(f"code {code!r}, expected one of {_show(exp.allowed)}: {where}")
        elif not _field_ok(exp.allowed[code], name):
            problems.append(
                f"{code} names field {name!r}, expected one of "
                f"{sorted(map(str, exp.allowed[code]))}: {where}"
            )
        return Outcome(label, problems)
    if kind not in exp.allowed:
        problems.append(f"reply {kind!r}, expected one of {_show(exp.allowed)}: {where}")
        if kind == "accepted" and exp.request is not None:  # follow it: keep in step
            final, _ = follow_job(session, exp, reply, where)
            return Outcome(label, problems, final)
        return Outcome(label, problems)
    if kind == "pong":
        if reply.get("protocol") != VERSION:
            problems.append(f"pong without protocol 1: {where}")
    elif kind == "status":
        rss = reply.get("memory", {}).get("rss")
        if not is_int(rss) or rss <= 0:
            problems.append(f"status without memory.rss: {where}")
    elif kind == "echo":
        problems.extend(_check_echo(exp, reply, frames, where))
    elif kind == "accepted":
        final, more = follow_job(session, exp, reply, where)
        problems.extend(more)
        return Outcome(label, problems, final)
    return Outcome(label, problems)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _show(allowed: dict[str, set]) -> str:
    return "; ".join(f"{k} ({', '.join(sorted(map(str, v)))})" for k, v in sorted(allowed.items()))


def _check_echo(exp: Expect, reply: dict, frames: list[bytes], where: str) -> list[str]:
    sent = exp.request["image"]
    spec = reply.get("image") or {}
    want = {k: sent[k] for k in ("width", "height", "channels", "dtype")}
    if {k: spec.get(k) for k in want} != want or spec.get("frame") != 1 or len(frames) != 2:
        return [f"echo changed the image: {where}"]
    if frames[1] != exp.frames[sent["frame"]]:
        return [f"echo changed the pixels: {where}"]
    return []


def follow_job(
    session: Session, exp: Expect, accepted: dict[str, Any], where: str
) -> tuple[str, list[str]]:
    """An accepted submit: read its events up to the final message and check that one."""
    problems = []
    job, rid = accepted.get("job"), accepted.get("id")
    if not isinstance(job, str) or not is_int(accepted.get("position")):
        problems.append(f"accepted without job or position: {accepted!r}")
    deadline = time.monotonic() + session.timeout
    cancel_id = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0 and cancel_id is None:  # too slow for a fuzz job: cancel it
            cancel_id = f"cancel-{job}"
            session.sock.send_multipart(
                [
                    msgpack.packb(
                        {
                            "v": VERSION,
                            "type": "cancel",
                            "id": cancel_id,
                            "job": job,
                        }
                    )
                ]
            )
            deadline = time.monotonic() + session.timeout
            continue
        frames = session.recv(max(left, 0))
        if frames is None and cancel_id is None:
            continue  # too slow: cancel it (above)
        if frames is None:
            problems.append(f"job {job} never ended, even when cancelled: {where}")
            return "lost", problems
        header, problem = _parse(frames)
        if header is None:
            problems.append(problem or "?")
            continue
        kind = header.get("type")
        if header.get("id") == cancel_id and cancel_id is not None:
            continue  # cancelling / unknown_job (it may have just ended)
        if header.get("id") != rid or header.get("job") != job:
            problems.append(f"message for another request while job {job} ran: {header!r}")
            continue
        if kind in ("queued", "progress", "preview"):
            if kind == "preview" and exp.request.get("preview") is None:
                problems.append(f"preview without asking: {header!r}")
            continue
        final = header.get("code") if kind == "error" else kind
        if kind == "cancelled" and cancel_id is not None:
            return "cancelled", problems
        if final not in exp.late:
            problems.append(
                f"job ended {final!r}, expected {_show(exp.late)}: {where} / {header!r}"
            )
        elif kind == "error" and not _field_ok(exp.late[final], header.get("field")):
            problems.append(f"job error names {header.get('field')!r}: {where} / {header!r}")
        elif kind == "result":
            problems.extend(_check_result(exp.request, header, frames, where))
        return str(final), problems


def _check_result(request: dict, header: dict, frames: list[bytes], where: str) -> list[str]:
    content = request["content"]
    spec = header.get("image") or {}
    want = {k: content[k] for k in ("width", "height", "channels", "dtype")}
    got = {k: spec.get(k) for k in want}
    if request.get("mask") is not None and want["channels"] in (1, 3):
        # docs: "the result's alpha is the content's alpha times the mask", so a layer without
        # alpha gets one, though the same page says the channel layout comes back unchanged
        got["channels"] = want["channels"] if got["channels"] == want["channels"] + 1 else -1
    if got != want or len(frames) != 2:
        return [f"result image {spec!r} does not match the content {want!r}: {where}"]
    item = ITEMSIZE[want["dtype"]]
    if len(frames[1]) != want["width"] * want["height"] * spec["channels"] * item:
        return [f"result blob of {len(frames[1])} bytes: {where}"]
    return []


# --- the valid job before and after ---------------------------------------------------------------


def reference_job() -> tuple[dict[str, Any], list[bytes]]:
    """The small valid job run before and after the fuzzing: 32 x 32 RGBA, 3 steps."""
    req = Request({}, [])
    content = add_image(req, 32, 32, 4, "uint8", seed=5)
    style = add_image(req, *STYLE_SHAPES[0])
    header = {
        "content": content,
        "styles": [style],
        "preset": "fast",
        "controls": {"size": 32, "style_size": 32, "steps": 3},
    }
    return header, req.blobs


def warm_up(session: Session) -> bytes:
    """Run the reference job (returns its pixels) and a job for each preset, content size and
    style image the fuzzing's valid submits use: first uses are not what we measure."""
    header, blobs = reference_job()
    reply, frames = session.run_job(header, blobs)
    assert reply["type"] == "result", reply
    for preset in PRESETS:
        for height, width in CONTENT_SHAPES:
            for size in (32, 48) if preset == "paper" else (48,):
                req = Request({}, [])
                content = add_image(req, height, width, 3, "uint8")
                styles = [add_image(req, *shape) for shape in STYLE_SHAPES]
                warm = {
                    "content": content,
                    "styles": styles,
                    "preset": preset,
                    "controls": {"size": size, "style_size": 32, "steps": 2},
                }
                done, _ = session.run_job(warm, req.blobs)
                assert done["type"] == "result", done
    return frames[1]


def reference_result_ok(session: Session, expected: bytes) -> tuple[bool, str]:
    """Run the reference job again: the same pixels must come back (the engine is seeded)."""
    header, blobs = reference_job()
    reply, frames = session.run_job(header, blobs)
    if reply.get("type") != "result":
        return False, f"the reference job ended with {reply!r}"
    if reply["image"] != {"width": 32, "height": 32, "channels": 4, "dtype": "uint8", "frame": 1}:
        return False, f"the reference result is {reply['image']!r}"
    got = np.frombuffer(frames[1], np.uint8).reshape(32, 32, 4)
    want = np.frombuffer(expected, np.uint8).reshape(32, 32, 4)
    if not np.array_equal(
        got[..., 3], np.frombuffer(blobs[0], np.uint8).reshape(32, 32, 4)[..., 3]
    ):
        return False, "the reference result lost its alpha"
    diff = int(np.abs(got.astype(int) - want).max())
    return diff <= 1, f"max difference to the result before the fuzzing: {diff}"
