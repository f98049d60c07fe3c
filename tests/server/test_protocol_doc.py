"""docs/protocol.md stays true: its byte dump is what the code puts on the wire."""

from __future__ import annotations

import re

import numpy as np

from stylebridge.server.protocol import encode_image, pack
from stylebridge.wire.messages import Submit
from testing import REPO

DOC = REPO / "docs" / "protocol.md"


def test_example_dump_matches_the_encoder():
    c_spec, (c_blob,) = encode_image(np.arange(16, dtype=np.uint8).reshape(2, 2, 4), 1)
    s_spec, (s_blob,) = encode_image(np.full((2, 2, 3), 200, np.uint8), 2)
    submit = Submit(c_spec, [s_spec], preset="fast", controls={"strength": 0.8}, id=1)
    frames = [bytes(f) for f in pack(submit, [c_blob, s_blob])]
    text = DOC.read_text()
    for i, frame in enumerate(frames):
        block = text.split(f"frame {i} ({len(frame)} bytes):\n", 1)[1].split("\nframe", 1)[0]
        hex_bytes = re.findall(r"^  [0-9a-f]{4}  ((?:[0-9a-f]{2} ?)+)", block, re.M)
        assert bytes.fromhex("".join(hex_bytes)) == frame, f"frame {i}"
