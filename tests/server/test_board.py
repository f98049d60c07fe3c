"""The job board both backends share: serving order, cancel, stop and retries, without a
server or an engine."""

import threading

from stylebridge.server.board import Job, JobBoard
from stylebridge.wire.messages import Queued


def _board(runners: int = 1) -> tuple[JobBoard, list]:
    sent: list = []
    return JobBoard(
        lambda peer, message, blobs: sent.append((peer, message)), lambda: runners
    ), sent


def _job(peer: bytes, n: int) -> Job:
    return Job(peer, n, None)  # type: ignore[arg-type]  # the board never reads the request


def test_clients_are_served_round_robin_and_positions_count_the_busy_runner():
    board, sent = _board()
    a1, a2, b1 = _job(b"a", 1), _job(b"a", 2), _job(b"b", 3)
    assert board.submit(a1) == 0
    assert board.take() is a1
    assert board.submit(a2) == 1  # behind the running one
    assert board.submit(b1) == 2
    sent.clear()
    board.finish(a1)
    assert board.take() is a2 and board.take() is b1  # lanes take turns
    assert board.idle() is False
    board.finish(a2)
    board.finish(b1)
    assert board.idle() is True


def test_cancel_removes_a_waiting_job_and_signals_a_running_one():
    board, sent = _board()
    running, waiting, behind = _job(b"a", 1), _job(b"a", 2), _job(b"b", 3)
    for job in (running, waiting, behind):
        board.submit(job)
    board.take()
    sent.clear()
    assert board.cancel(b"a", waiting.id) is waiting and not waiting.cancel.is_set()
    assert sent == [(b"b", Queued(behind.id, 1, id=3))]
    assert board.cancel(b"b", running.id) is None  # not that client's job
    assert board.cancel(b"a", running.id) is running and running.cancel.is_set()


def test_a_dead_runner_requeues_its_job_first_until_the_limit():
    board, sent = _board(runners=2)
    job, other = _job(b"a", 1), _job(b"b", 2)
    board.submit(job)
    board.submit(other)
    assert board.take() is job
    assert board.retry(job, limit=2) is None  # queued again, ahead of the other client
    assert board.waiting_ids() == [job.id, other.id]
    assert sent[-2][1] == Queued(job.id, 1, retry=1, id=1)
    assert board.take() is job
    assert board.retry(job, limit=2) == 2  # its second run: no third
    assert board.waiting_ids() == [other.id]


def test_stop_cancels_the_running_job_hands_back_the_waiting_and_wakes_every_runner():
    board, _ = _board(runners=2)
    running, waiting = _job(b"a", 1), _job(b"b", 2)
    board.submit(running)
    board.take()
    board.submit(waiting)
    woke = []
    idle_runner = threading.Thread(target=lambda: woke.append(board.take()))
    board.finish(running)
    board.take()  # the waiting one now runs; the second runner finds nothing and waits
    idle_runner.start()
    assert board.stop() == []
    idle_runner.join(5)
    assert woke == [None] and waiting.cancel.is_set()
    assert board.retry(waiting, limit=3) == 0  # stopping: never queued again
