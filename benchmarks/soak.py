"""Soak (`make soak`): hostile traffic and load against one real server, figures in a table.

1. Fuzzing: at least 10,000 malformed, truncated, oversized and type-confused requests (half
   drawn by hypothesis, half by a seeded random source; the generators and the oracle of
   docs/protocol.md are testing/fuzz/, shared with tests/server/test_fuzz.py),
   then raw garbage below ZeroMQ on 2,000 TCP connections and 200 peers held half-way, and
   the never-ending message of a peer without the token (8 MiB frames, all "more", up to
   2 GiB) at both front doors, the server's and a relay's: RSS before and at the peak; and
   twice a handshake HELLO announced as 1 GiB, 512 MiB of it sent, at each door.
2. After it: the reference job gives the same pixels as before, and the server's RSS is within
   10% of the RSS after the warm-up.
3. Load: 8 clients, 50 small jobs (testing/load.py): every result right, none lost or
   swapped, round-robin order between clients, RSS flat, jobs/s.

Bounded: about 4 minutes on 2 CPU cores; the fuzzing stops early (saying so) past --budget.
Exit status 1 when anything is outside what docs/protocol.md allows, or the server crashed.
Usage: python -m benchmarks.soak [--messages N] [--raw N] [--seed S] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from testing import fuzz as fm
from testing.load import CLIENTS, JOBS, RSS_FIRST_AFTER, imbalance, run_load
from testing.servers import clean_env, free_port, start_server

RSS_TOLERANCE = 0.10
HELD = 200
FLOOD_BYTES = 2 * 2**30  # what the reproduced attack sent (issue 16)
FLOOD_RSS_LIMIT = 50 * 2**20
HELLO_BYTES = 512 * 2**20  # of a HELLO command announced as 1 GiB (issue 27, item 1)


class Tally:
    """Replies by outcome, and the problems grouped by kind (one example each)."""

    def __init__(self) -> None:
        self.sent = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.jobs: collections.Counter[str] = collections.Counter()
        self.problems: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}

    def add(self, outcome: fm.Outcome) -> None:
        self.sent += 1
        self.outcomes[outcome.label] += 1
        if outcome.job_final:
            self.jobs[outcome.job_final] += 1
        for problem in outcome.problems:
            kind = re.sub(r"'[^']*'|\d+", "_", problem.split(":")[0])[:70]
            self.problems[kind] += 1
            self.examples.setdefault(kind, problem[:600])


def fuzz(
    server, session, ctx, tally: Tally, total: int, seed: int, deadline: float
) -> tuple[str, int]:
    """Half hypothesis, half seeded random; stops at the deadline or if the server dies."""
    half = total // 2

    @hypothesis_seed(seed)
    @settings(
        max_examples=half,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # nothing is raised: no shrinking, every example counts
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def one(data) -> None:
        if time.monotonic() > deadline or server.proc.poll() is not None:
            return
        case = fm.build_case(fm.HypothesisDraw(data), ctx, session.next_rid())
        tally.add(session.check(case))

    one()
    by_hypothesis = tally.sent
    rng = random.Random(seed)
    while tally.sent < total and time.monotonic() < deadline and server.proc.poll() is None:
        case = fm.build_case(fm.RandomDraw(rng.getrandbits(64)), ctx, session.next_rid())
        tally.add(session.check(case))
    if server.proc.poll() is not None:
        return "the server died", by_hypothesis
    return ("stopped at the time budget" if tally.sent < total else "complete"), by_hypothesis


def raw_garbage(server, session, connections: int, seed: int) -> dict[str, float]:
    draw = fm.RandomDraw(seed)
    stats: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    while stats["connections"] < connections and server.proc.poll() is None:
        cases = [fm.raw_case(draw, server.token) for _ in range(100)]
        kinds.update(c.label.split(" ")[0] for c in cases)
        stats.update(fm.run_raw_batch(server.endpoint, cases, settle=0.1))
    held = fm.hold_connections(server.endpoint, HELD, draw)
    try:
        start = time.monotonic()
        session.request({"type": "ping"})
        fm.raw_ping(server.endpoint, fm.raw_case_ping(server.token))
        stats["ping ms while held"] = round((time.monotonic() - start) * 1000, 1)
    finally:
        fm.drop_connections(held)
    stats["kinds"] = len(kinds)
    return dict(stats)


def start_relay(server, folder: Path) -> tuple[subprocess.Popen, str]:
    """`stylebridge relay` on loopback in front of ``server`` (its token from the environment)."""
    folder.mkdir()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = clean_env(STYLEBRIDGE_TOKEN=server.token, STYLEBRIDGE_RUNTIME_DIR=str(folder))
    log = folder / "relay.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stylebridge.server.cli", "relay", "--listen", endpoint,
             "--to", server.endpoint],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while "ready on" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the relay did not start: {log.read_text()}")
        time.sleep(0.1)
    return proc, endpoint


def floods(server, folder: Path) -> list[tuple[str, dict[str, float]]]:
    """The never-ending message without the token, at the server and at a relay before it;
    then twice a HELLO announced as 1 GiB with 512 MiB of it sent (issue 27, item 1)."""
    relay, relay_endpoint = start_relay(server, folder)
    try:
        doors = (("server", server.endpoint, server.proc.pid), ("relay", relay_endpoint, relay.pid))
        return [
            (f"{door}, {label}", fm.flood_watched(endpoint, pid, FLOOD_BYTES, password))
            for door, endpoint, pid in doors
            for label, password in (("no credentials", None), ("wrong token", "x" * 43))
        ] + [
            (
                f"{door}, HELLO of 1 GiB #{i}",
                fm.flood_watched(endpoint, pid, HELLO_BYTES, None, fm.hello_flood),
            )
            for door, endpoint, pid in doors
            for i in (1, 2)
        ]
    finally:
        relay.terminate()
        relay.wait(30)


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def row(name: str, value: object, note: str = "") -> None:
    print(f"  {name:<44} {value!s:>16}  {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=12_000, help="fuzz requests (>= 10,000)")
    parser.add_argument("--raw", type=int, default=2_000, help="raw TCP connections")
    parser.add_argument("--seed", type=int, default=None, help="default: a new one, printed")
    parser.add_argument("--budget", type=float, default=480, help="seconds for the fuzzing")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(
            Path(tmp) / "rt", "--max-pixels", "4096", "--max-queue", str(JOBS + 14)
        )
        try:
            return soak(server, args, seed, began, Path(tmp))
        finally:
            server.stop()


def soak(server, args, seed: int, began: float, tmp: Path) -> int:
    failures: list[str] = []
    session = fm.Session(server.endpoint, server.token, timeout=30)
    status = session.request({"type": "status"})
    ctx = fm.Context.from_status(server.token, status)
    print(f"stylebridge soak: seed {seed}, server pid {server.proc.pid} on {status['device']}")
    reference = fm.warm_up(session)
    rss_before = session.request({"type": "status"})["memory"]["rss"]

    tally = Tally()
    start = time.monotonic()
    how, by_hypothesis = fuzz(server, session, ctx, tally, args.messages, seed, start + args.budget)
    fuzz_s = time.monotonic() - start
    leftovers = session.leftovers() if server.proc.poll() is None else []
    start = time.monotonic()
    raw = raw_garbage(server, session, args.raw, seed) if server.proc.poll() is None else {}
    raw_s = time.monotonic() - start
    flooded = floods(server, tmp / "relay") if server.proc.poll() is None else []
    crashed = server.proc.poll() is not None
    ok, why = (False, "the server died") if crashed else fm.reference_result_ok(session, reference)
    rss_after = 0 if crashed else session.request({"type": "status"})["memory"]["rss"]
    rss_change = fm.change(rss_before, rss_after) if rss_after else float("nan")

    print("\nfuzzing (docs/protocol.md is the oracle)")
    row("requests sent", f"{tally.sent:,}", f"{how}, {fuzz_s:.0f} s, {tally.sent / fuzz_s:.0f}/s")
    row(
        "  drawn by hypothesis / seeded random",
        f"{by_hypothesis:,} / {tally.sent - by_hypothesis:,}",
    )
    for label, n in tally.outcomes.most_common():
        kind = "error" if label in fm.CODES else "reply"
        row(f"  {kind}: {label}", f"{n:,}", f"{n / tally.sent:.1%}")
    jobs = ", ".join(f"{k} {n}" for k, n in tally.jobs.most_common()) or "none"
    row("valid jobs among them, ended", sum(tally.jobs.values()), jobs)
    row("replies outside the protocol (problems)", sum(tally.problems.values()))
    for kind, n in tally.problems.most_common():
        row(f"  {kind}", n)
    row("replies nobody asked for", len(leftovers))
    print("\nraw garbage below ZeroMQ")
    row("TCP connections", f"{raw.get('connections', 0):,}", f"{raw.get('kinds', 0)} kinds")
    row("  closed by the server / left waiting", f"{raw.get('closed by server', 0):,} / "
        f"{raw.get('left open', 0):,}")  # fmt: skip
    row("  raw ZMTP pings answered", raw.get("raw pings answered", 0))
    row(f"  ping with {HELD} peers stuck half-way", f"{raw.get('ping ms while held', '-')} ms")
    row("  time", f"{raw_s:.0f} s")
    print(
        f"\nwithout the token: a never-ending message (up to {mib(FLOOD_BYTES)}), "
        f"a HELLO of 1 GiB ({mib(HELLO_BYTES)} of it sent)"
    )
    for label, f in flooded:
        grew = f["rss_peak"] - f["rss_before"]
        row(f"  {label}", f"{mib(f['sent'])} taken",
            f"{f['ended']} after {f['seconds'] * 1000:.0f} ms; RSS {mib(f['rss_before'])}, "
            f"peak +{grew / 2**20:.1f} MiB")  # fmt: skip
        if grew >= FLOOD_RSS_LIMIT or f["ended"] == "all sent":
            failures.append(f"the flood at the {label} was buffered")
    print("\nafter the fuzzing")
    row("server crashes", int(crashed))
    row("reference job (32x32 RGBA, 3 steps)", "same pixels" if ok else "WRONG", why)
    row("RSS after the warm-up", mib(rss_before))
    row("RSS after the fuzzing", mib(rss_after), f"{rss_change:+.1%} (limit 10%)")

    if crashed:
        failures.append("the server crashed")
    else:
        start = time.monotonic()
        load = run_load(server.endpoint, server.token)
        load_s = time.monotonic() - start
        jobs_of = {c: sum(r.client == c for r in load.records) for c in range(CLIENTS)}
        fifo = imbalance(sorted(load.started), jobs_of)
        print(f"\nload: {CLIENTS} clients, {JOBS} jobs in all, queued behind a gate job")
        right = sum(r.outcome == "result" and not r.wrong for r in load.records)
        row("results right", f"{right} / {JOBS}", f"{load.reference_equal} identical run alone")
        row("lost / swapped / stray messages", f"{load.lost} / {load.swapped} / {len(load.stray)}")
        row("order imbalance, planned (status queue)", imbalance(load.planned, jobs_of),
            f"1 = round-robin; first come first served: {fifo}")  # fmt: skip
        row("order imbalance, as the jobs started", imbalance(load.started, jobs_of))
        row(f"RSS after {RSS_FIRST_AFTER} jobs / after {JOBS}",
            f"{mib(load.rss_first)} / {mib(load.rss_last)}", f"{load.rss_change:+.1%}")  # fmt: skip
        row("throughput", f"{load.jobs_per_s:.1f} jobs/s", f"{load.elapsed:.1f} s for {JOBS}")
        row("time (with each job re-run alone)", f"{load_s:.0f} s")
        failures += load.problems
        if imbalance(load.planned, jobs_of) > 1 or imbalance(load.started, jobs_of) > 2:
            failures.append("unfair order")
        if abs(load.rss_change) > RSS_TOLERANCE:
            failures.append(f"RSS not flat under load ({load.rss_change:+.1%})")
    print(f"\ntotal {time.monotonic() - began:.0f} s")

    if tally.sent < 10_000:
        failures.append(f"only {tally.sent} fuzz requests ({how})")
    if tally.problems or leftovers:
        failures.append("replies outside the protocol: examples below")
    if not ok:
        failures.append(f"reference job: {why}")
    if not abs(rss_change) <= RSS_TOLERANCE:
        failures.append(f"RSS after the fuzzing {rss_change:+.1%}")
    if server.log.exists() and "Traceback" in server.log.read_text():
        failures.append("a traceback in the server log")
    for kind, example in tally.examples.items():
        print(f"\nexample of '{kind}':\n  {example}")
    if failures:
        print("\nFAILED: " + "; ".join(failures[:10]))
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
