"""Helpers only the tests use: test pictures (`images`), the launcher that starts a server on
the host for a sandboxed host (`launcher`), and the wire peers run in subprocesses without
pyzmq and msgpack (`wire_peer`, `plugin_client_peer`, `wire_blocker`). What the benchmarks use
too lives in testing/."""

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent  # the peers run from here as scripts
