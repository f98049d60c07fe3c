"""The fair queue: round-robin between clients, nothing lost or reordered within a client."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from stylebridge.server.scheduler import FairQueue


@dataclass(eq=False)
class J:
    peer: bytes
    id: str


def test_one_busy_client_does_not_hold_back_another():
    q = FairQueue()
    for i in range(5):
        q.push(J(b"a", f"a{i}"))
    assert q.push(J(b"b", "b0")) == 1  # served second, not sixth
    served = [q.pop().id for _ in range(6)]
    assert served == ["a0", "b0", "a1", "a2", "a3", "a4"]


def test_iteration_is_the_serving_order():
    q = FairQueue()
    for peer, n in ((b"a", 3), (b"b", 1), (b"c", 2)):
        for i in range(n):
            q.push(J(peer, f"{peer.decode()}{i}"))
    expected = [j.id for j in q]
    assert [q.pop().id for _ in range(len(q))] == expected == ["a0", "b0", "c0", "a1", "c1", "a2"]
    assert not q and len(q) == 0


def test_remove_and_drop_peer():
    q = FairQueue()
    jobs = [J(b"a", "a0"), J(b"a", "a1"), J(b"b", "b0")]
    for j in jobs:
        q.push(j)
    assert q.remove(b"b", "a0") is None  # another client's job id: not found
    assert q.remove(b"a", "a0") is jobs[0]
    assert [j.id for j in q.drop_peer(b"a")] == ["a1"]
    assert [j.id for j in q.clear()] == ["b0"] and not q


@given(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c"]), st.booleans()), max_size=60))
def test_nothing_lost_order_kept_within_each_client(ops):
    q, pushed, popped, n = FairQueue(), [], [], 0
    for peer, push in ops:
        if push or not q:
            job = J(peer, str(n))
            n += 1
            q.push(job)
            pushed.append(job)
        else:
            popped.append(q.pop())
    popped += [q.pop() for _ in range(len(q))]
    assert sorted(j.id for j in popped) == sorted(j.id for j in pushed)
    for peer in (b"a", b"b", b"c"):
        mine = [int(j.id) for j in popped if j.peer == peer]
        assert mine == sorted(mine)
