"""The server's side of a submit (server/protocol.py): the message read by the wire package, its
pixels as arrays, its controls checked by value, in that order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stylebridge.server.handlers import kept
from stylebridge.server.protocol import Limits, encode_image, job_request
from stylebridge.wire import messages
from stylebridge.wire.messages import ProtocolError, Submit, read_request


def frames_of(content: np.ndarray, style: np.ndarray, **controls) -> tuple[Submit, list]:
    c_spec, (c_blob,) = encode_image(content, 1)
    s_spec, (s_blob,) = encode_image(style, 2)
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


# --- pixels over FRAME_BYTES travel in several frames (issue 27, item 1) ------------------------


@pytest.fixture
def small_frames(monkeypatch):
    """FRAME_BYTES at 64 bytes, so that a few pixels take several frames."""
    monkeypatch.setattr(messages, "FRAME_BYTES", 64)
    return 64


def test_pixels_over_a_frame_travel_in_several_and_come_back_joined(small_frames):
    content = np.arange(10 * 9 * 4, dtype=np.uint16).reshape(10, 9, 4)  # 720 bytes: 12 frames
    style = np.random.default_rng(1).random((5, 7, 3), np.float32)  # 420 bytes: 7 frames
    mask = np.full((10, 9, 1), 200, np.uint8)  # 90 bytes: 2 frames
    c_spec, c_blobs = encode_image(content, 1)
    s_spec, s_blobs = encode_image(style, 1 + len(c_blobs))
    m_spec, m_blobs = encode_image(mask, 1 + len(c_blobs) + len(s_blobs))
    assert [len(c_blobs), len(s_blobs), len(m_blobs)] == [12, 7, 2]
    assert {len(b) for b in c_blobs[:-1]} == {small_frames} and len(c_blobs[-1]) == 720 - 704
    frames = [b"header", *map(bytes, c_blobs + s_blobs + m_blobs)]
    header = Submit(c_spec, [s_spec], mask=m_spec, id=1).to_header()
    job = job_request(read_request(header, frames, Limits().bounds()), frames)
    assert np.array_equal(job.content, content) and np.array_equal(job.styles[0], style)
    assert np.array_equal(job.mask, mask)
    kept_job, kept_bytes = kept(job)  # joined pixels are numpy's own: kept without a copy
    assert kept_job.content is job.content and kept_bytes == 720 + 420 + 90


@pytest.mark.parametrize("fault", ["a short middle frame", "one frame missing", "one too many"])
def test_pixels_laid_out_in_frames_otherwise_are_refused_in_one_sentence(small_frames, fault):
    content = np.zeros((10, 9, 4), np.uint8)  # 360 bytes: 5 frames of 64 and one of 40
    c_spec, c_blobs = encode_image(content, 1)
    blobs = [bytes(b) for b in c_blobs]
    if fault == "a short middle frame":
        blobs[1], blobs[2] = blobs[1][:-8], blobs[2] + bytes(8)
    elif fault == "one frame missing":
        blobs.pop()
    s_spec, s_blobs = encode_image(np.zeros((2, 2, 3), np.uint8), 1 + len(c_blobs))
    frames = [b"header", *blobs, *map(bytes, s_blobs)]
    if fault == "one too many":
        c_spec = dataclasses.replace(c_spec, width=11)  # 440 bytes: 7 frames, the style's taken
    header = Submit(c_spec, [s_spec], id=1).to_header()
    with pytest.raises(ProtocolError) as refused:
        read_request(header, frames, Limits().bounds())
    assert (refused.value.code, refused.value.field) == ("bad_field", "content")
    assert "bytes" in str(refused.value) and "\n" not in str(refused.value)
