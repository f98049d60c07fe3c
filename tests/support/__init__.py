"""Helpers the tests share: real server processes (`servers`), test pictures (`images`), the
plug-ins loaded as they install (`plugins`), the wire peers run in subprocesses without pyzmq
and msgpack (`wire_peer`, `plugin_client_peer`, `wire_blocker`) and the hostile-message
builder shared with benchmarks/soak.py (`fuzz_messages`)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).resolve().parent  # the peers run from here as scripts
