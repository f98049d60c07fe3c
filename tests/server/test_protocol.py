"""The server's side of a submit (server/protocol.py): the message read by the wire package, its
pixels as arrays, its controls checked by value, in that order."""

from __future__ import annotations

import numpy as np
import pytest

from stylebridge.server.protocol import Limits, encode_image, job_request
from stylebridge.wire.messages import ProtocolError, Submit, read_request


def frames_of(content: np.ndarray, style: np.ndarray, **controls) -> tuple[Submit, list]:
    c_spec, c_blob = encode_image(content, 1)
    s_spec, s_blob = encode_image(style, 2)
    header = Submit(c_spec, [s_spec], controls=controls, id=1).to_header()
    frames = [b"header", bytes(c_blob), bytes(s_blob)]
    return read_request(header, frames, Limits().bounds()), frames


def test_a_submit_becomes_a_job_with_its_settings_checked():
    submit, frames = frames_of(
        np.full((40, 48, 4), 7, np.uint8), np.full((32, 32, 3), 0.5, np.float32), steps=9
    )
    job = job_request(submit, frames)
    assert job.content.shape == (40, 48, 4) and job.styles[0].dtype == np.float32
    assert job.settings.steps == 9 and job.settings.preset == "fast"


def test_a_bad_image_is_refused_before_a_bad_control():
    """Found by `make soak`: with both wrong, the image is what the reply names."""
    style = np.full((32, 32, 3), np.nan, np.float32)
    submit, frames = frames_of(np.zeros((40, 48, 4), np.uint8), style, steps=-2)
    with pytest.raises(ProtocolError) as refused:
        job_request(submit, frames)
    assert (refused.value.code, refused.value.field) == ("bad_field", "styles.0")
    submit, frames = frames_of(np.zeros((40, 48, 4), np.uint8), np.zeros_like(style), steps=-2)
    with pytest.raises(ProtocolError) as refused:
        job_request(submit, frames)
    assert refused.value.field == "controls.steps"
