"""Krita's job runner (`StyleRun`) and its layer (`ResultLayer`) on the fake ``krita`` module
(tests/fakes/krita.py) with a scripted client (tests/fakes/client.py): the preview becomes the
result in the same node, at the strength as opacity, in one undo step; whatever ends a run
early leaves the document as it was. Driven by Qt's event loop (offscreen PyQt6), as in Krita.
"""

from __future__ import annotations

import struct
import time

import pytest

from tests.fakes import krita as fake
from tests.fakes.client import ScriptedClient

W, H = 64, 48
STYLE = "The Starry Night (van Gogh)"
TITLE = f"{STYLE} · Fast · style 0.5"  # the style, the preset and the style amount
PREVIEW = TITLE + " (stylising...)"


def opaque_bgra(width: int, height: int) -> bytes:
    """Krita's 8-bit RGBA layout (B, G, R, A): ramps, fully opaque."""
    return b"".join(
        bytes((x * 255 // width, y * 255 // height, 90, 255))
        for y in range(height)
        for x in range(width)
    )


@pytest.fixture
def doc(krita_app):
    """Background (the source, active) under Top: the result goes between them."""
    document = fake.Document(W, H)
    source = document.add_layer("Background", opaque_bgra(W, H))
    document.add_layer("Top")
    document.setActiveNode(source)
    return fake.open_document(document)


def rgb(sbk, width: int, height: int, pixel: tuple[int, int, int]):
    return sbk.stylebridge_wire.Image(width, height, 3, "uint8", bytes(pixel) * (width * height))


def rgba(sbk, width: int, height: int, pixel: tuple[int, int, int, int]):
    return sbk.stylebridge_wire.Image(width, height, 4, "uint8", bytes(pixel) * (width * height))


class Run:
    """A `StyleRun` on the active layer of ``doc`` with a scripted client, and what it said."""

    def __init__(self, sbk, qapp, doc, script, **controls) -> None:
        self.qapp = qapp
        self.doc = doc
        self.client = ScriptedClient(script)
        options = sbk.options.Options(["starry_night"], controls=controls)
        capture = sbk.host.capture(doc, doc.activeNode())
        self.run = sbk.runner.StyleRun(capture, options, self.client)
        self.events: list[tuple] = []
        self.run.finished.connect(lambda node: self.events.append(("finished", node)))
        self.run.failed.connect(lambda message: self.events.append(("failed", message)))
        self.run.cancelled.connect(lambda: self.events.append(("cancelled",)))
        self.previews: list = []
        self.run.start()  # its first piece; the timer runs the rest, up to the submit
        self.until(lambda: self.client.submits or self.events)

    def until(self, condition, timeout: float = 10.0) -> None:
        """Qt's event loop (the run's 50 ms timer) until ``condition()`` holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"not reached within {timeout} s: {self.events}"
            self.qapp.processEvents()
            time.sleep(0.005)

    def ended(self) -> bool:
        return bool(self.events)

    def preview_shown(self) -> bool:
        return PREVIEW in self.doc.names()


def test_preview_then_result_in_the_same_node_at_the_strength_in_one_undo_step(sbk, qapp, doc):
    script = [
        ("progress", 1, 3),
        ("preview", rgb(sbk, 16, 12, (250, 0, 0))),
        ("progress", 2, 3),
        ("progress", 3, 3),
        ("result", rgba(sbk, W, H, (10, 20, 30, 255))),
    ]
    r = Run(sbk, qapp, doc, script, strength=0.6, size=256)
    sent = r.client.submits[0]
    # strength is the layer's opacity: the job itself runs at full strength
    assert sent["controls"] == {"size": 256} and sent["preset"] == "fast"
    assert sent["mask"] is None and sent["preview"] == sbk.options.PREVIEW_INTERVAL
    r.until(r.preview_shown)
    preview = r.run.layer.node
    assert doc.names() == ["Background", PREVIEW, "Top"]  # right above the source
    assert preview.locked() and preview.opacity() == round(255 * 0.6)
    r.until(lambda: preview.pixelData(W // 2, H // 2, 1, 1) != bytes(4))
    # the frame, scaled to the layer: red, in Krita's BGRA order, opaque like the source
    assert preview.pixelData(W // 2, H // 2, 1, 1) == bytes((0, 0, 250, 255))
    r.until(r.ended)
    (kind, node), *rest = r.events
    assert kind == "finished" and not rest
    assert node is preview and node.uniqueId() == preview.uniqueId()  # the same node
    assert doc.names() == ["Background", TITLE, "Top"]
    assert node.name() == TITLE and not node.locked()
    assert node.opacity() == round(255 * 0.6)  # the artist changes it later without a rerun
    assert node.pixelData(0, 0, W, H) == bytes((30, 20, 10, 255)) * (W * H)
    assert doc.history == [("add", PREVIEW)]  # exactly one undo step: adding the layer
    assert doc.nodeByUniqueId(node.uniqueId()) is node
    assert r.client.closed and r.run.ended


def test_opacity_is_the_strength_set_before_the_layer_is_inserted(sbk, qapp, doc):
    cap = sbk.host.capture(doc, doc.activeNode())
    for strength, opacity in ((0.0, 0), (0.25, 64), (1.0, 255), (1.7, 255)):
        layer = sbk.host.ResultLayer(cap, TITLE, strength)
        assert layer.node.opacity() == opacity
        # set before the insertion, as was the lock: neither is an undo step of its own then
        assert layer.node.inserted_as == {"name": PREVIEW, "opacity": opacity, "locked": True}
        layer.discard()
    assert doc.names() == ["Background", "Top"]
    assert [step for step, _ in doc.history] == ["add", "remove"] * 4


def test_cancel_removes_the_preview_and_stops_the_server_job(sbk, qapp, doc):
    script = [("progress", 1, 100), ("preview", rgb(sbk, 8, 6, (0, 200, 0)))]
    script += [("progress", n, 100) for n in range(2, 100)]
    r = Run(sbk, qapp, doc, script)
    r.until(r.preview_shown)
    job = r.client.jobs[0]
    r.run.cancel()
    assert doc.names() == ["Background", "Top"]  # at once, not when the server confirms
    assert r.events == [("cancelled",)]
    assert r.client.cancels == [job.job_id]
    r.until(lambda: r.client.closed)  # the server's answer is awaited, then the connection goes
    assert job.cancelled
    assert doc.history == [("add", PREVIEW), ("remove", PREVIEW)]


def test_discard_removes_the_node_and_only_once(sbk, qapp, doc):
    cap = sbk.host.capture(doc, doc.activeNode())
    layer = sbk.host.ResultLayer(cap, TITLE)
    assert doc.names() == ["Background", PREVIEW, "Top"] and layer.alive()
    layer.discard()
    assert doc.names() == ["Background", "Top"] and not layer.alive()
    layer.discard()  # already gone: nothing happens
    assert doc.history == [("add", PREVIEW), ("remove", PREVIEW)]


@pytest.mark.parametrize("krita_52", [True, False], ids=["nodeByUniqueId", "krita-5.1-tree-walk"])
def test_a_removed_preview_layer_cancels_the_job(sbk, qapp, krita_app, krita_52):
    document = fake.Document(W, H, node_by_unique_id=krita_52)
    source = document.add_layer("Background", opaque_bgra(W, H))
    doc = fake.open_document(document)
    script = [("progress", 1, 100), ("preview", rgb(sbk, 8, 6, (9, 9, 9)))]
    script += [("progress", n, 100) for n in range(2, 100)]
    r = Run(sbk, qapp, doc, script)
    r.until(r.preview_shown)
    r.run.layer.node.remove()  # the artist deletes it (or undoes its creation) mid-job
    r.until(r.ended)
    assert r.events == [("failed", "The preview layer was removed, so the job was cancelled.")]
    assert r.client.cancels == [r.client.jobs[0].job_id]
    assert doc.names() == ["Background"] and source.parentNode() is doc.rootNode()
    r.until(lambda: r.client.closed)


def test_a_result_of_the_wrong_size_fails_cleanly(sbk, qapp, doc):
    before = bytes(doc.activeNode().pixelData(0, 0, W, H))
    script = [("progress", 1, 2), ("result", rgba(sbk, 10, 10, (1, 2, 3, 255)))]
    r = Run(sbk, qapp, doc, script)
    r.until(r.ended)
    assert r.events == [("failed", f"The server answered 10x10, expected {W}x{H}.")]
    assert doc.names() == ["Background", "Top"]  # the preview layer went, nothing came
    assert doc.history == [("add", PREVIEW), ("remove", PREVIEW)]
    assert doc.activeNode().pixelData(0, 0, W, H) == before
    assert r.client.closed and r.client.cancels == []


def test_a_server_error_fails_with_its_message_in_the_dialogs_words_and_leaves_nothing(
    sbk, qapp, doc
):
    wire = sbk.stylebridge_wire
    error = wire.ServerError("bad_field", "size: 10 is outside 32..8192", "controls.size")
    r = Run(sbk, qapp, doc, [("progress", 1, 2), ("error", error)])
    r.until(r.ended)
    # the control as the dialog labels it, not the server's name for it
    assert r.events == [("failed", "Detail (px): 10 is outside 32..8192.")]
    assert doc.names() == ["Background", "Top"] and r.client.closed


def test_scripting_entry_point_returns_the_new_layer(sbk, qapp, doc, monkeypatch):
    client = ScriptedClient([("result", rgba(sbk, W, H, (1, 2, 3, 255)))])
    monkeypatch.setattr(sbk.api, "Client", lambda endpoint, token: client)
    node = sbk.stylize_active_layer("starry_night", strength=0.5, balance=0.7, size=64)
    assert node.name() == f"{STYLE} · Fast · style 0.7" and node.opacity() == 128
    assert client.submits[0]["controls"] == {"balance": 0.7, "size": 64}
    with pytest.raises(sbk.StyleTransferError, match="Style amount"):
        sbk.stylize_active_layer("starry_night", balance=2)


# ------------------------------------------------------------------ colour profiles
def ramp_u16(width: int, height: int) -> bytes:
    """Krita's 16-bit RGBA layout (B, G, R, A): ramps over the whole range, opaque."""
    values = []
    for y in range(height):
        for x in range(width):
            values += [x * 65535 // (width - 1), y * 65535 // (height - 1), 20000, 65535]
    return struct.pack(f"<{len(values)}H", *values)


@pytest.mark.parametrize(
    ("depth", "profile", "tolerance"),
    [
        ("U16", "sRGB-elle-V2-g10.icc", 1),  # linear light: Krita's default for scripts' U16
        ("F32", "sRGB-elle-V2-g10.icc", 1e-6),
        ("U16", "ClayRGB-elle-V2-g22.icc", 1),  # Adobe RGB compatible (the fake: its curve)
    ],
)
def test_a_document_in_another_profile_travels_in_srgb_and_comes_back_in_its_own(
    sbk, qapp, krita_app, depth, profile, tolerance
):
    document = fake.Document(W, H, "RGBA", depth, profile=profile)
    u16 = ramp_u16(W, H)
    pixels = u16 if depth == "U16" else fake.encode(fake.decode(u16, "RGBA", "U16"), "RGBA", "F32")
    source = document.add_layer("Background", pixels)
    doc = fake.open_document(document)
    r = Run(sbk, qapp, doc, None)  # the server hands the content back: a round trip
    sent = r.client.submits[0]["content"]
    # the server gets float sRGB: what Krita's conversion of the layer to the working space gives
    working = ("RGBA", "F32", sbk.host.WORKING_PROFILES["RGBA"])
    expected = fake.convert(pixels, ("RGBA", depth, profile), working)
    assert (sent.dtype, sent.channels) == ("float32", 4) and sent.data == expected
    assert sent.data != fake.encode(fake.decode(pixels, "RGBA", depth), "RGBA", "F32")
    r.until(r.ended)
    assert r.events[0][0] == "finished", r.events
    result = fake.decode(r.events[0][1].pixelData(0, 0, W, H), "RGBA", depth)
    original = fake.decode(source.pixelData(0, 0, W, H), "RGBA", depth)
    scale = 65535 if depth == "U16" else 1
    error = max(abs(a - b) for a, b in zip(result, original, strict=True)) * scale
    assert error <= tolerance
    # Krita converted in scratch documents, closed again: the user's document is not converted
    assert doc.history == [("add", PREVIEW)] and (doc.depth, doc.profile) == (depth, profile)
    scratch = krita_app.created
    assert len(scratch) == 2 and all(d.closed for d in scratch)
    assert krita_app.open_documents == [doc]


def test_a_float_documents_values_beyond_0_1_are_sent_and_come_back(sbk, qapp, krita_app):
    # the working profile's curve is unbounded (a V2 one would clip: the fake does too)
    document = fake.Document(W, H, "RGBA", "F32", profile="sRGB-elle-V2-g10.icc")
    values = [4.0, 2.0, -0.25, 1.0] * (W * H)  # linear light above 1, a colour outside sRGB
    source = document.add_layer("Background", struct.pack(f"<{4 * W * H}f", *values))
    doc = fake.open_document(document)
    r = Run(sbk, qapp, doc, None)  # the server hands the content back: a round trip
    sent = struct.unpack(f"<{4 * W * H}f", r.client.submits[0]["content"].data)
    assert sent[:3] == pytest.approx([1.8249, 1.3533, -3.23], abs=1e-3)  # sRGB-encoded
    r.until(r.ended)
    result = struct.unpack(f"<{4 * W * H}f", r.events[0][1].pixelData(0, 0, W, H))
    assert result == pytest.approx(values, abs=1e-5)
    assert source.pixelData(0, 0, W, H) == struct.pack(f"<{4 * W * H}f", *values)


def test_a_document_in_the_working_profile_is_sent_as_it_is(sbk, qapp, krita_app, doc):
    r = Run(sbk, qapp, doc, None)
    r.until(r.ended)
    assert r.client.submits[0]["content"].dtype == "uint8"
    assert krita_app.created == []  # no conversion, no scratch document


def test_a_layer_in_another_profile_than_its_document_comes_back_in_the_documents(
    sbk, qapp, krita_app
):
    document = fake.Document(W, H, "RGBA", "U16")  # Krita's sRGB curve
    source = document.add_layer("Background", ramp_u16(W, H))
    source.profile = "sRGB-elle-V2-g10.icc"  # the layer alone is linear
    doc = fake.open_document(document)
    r = Run(sbk, qapp, doc, None)
    working = ("RGBA", "F32", sbk.host.WORKING_PROFILES["RGBA"])
    linear = ("RGBA", "U16", source.profile)
    assert r.client.submits[0]["content"].data == fake.convert(ramp_u16(W, H), linear, working)
    r.until(r.ended)
    # the result layer is in the document's space: the layer's colours in sRGB, not linear
    result = r.events[0][1].pixelData(0, 0, W, H)
    assert result == fake.convert(ramp_u16(W, H), linear, ("RGBA", "U16", document.profile))


def test_a_preview_frame_is_shown_in_a_linear_documents_own_profile(sbk, qapp, krita_app):
    document = fake.Document(W, H, "RGBA", "U16", profile="sRGB-elle-V2-g10.icc")
    document.add_layer("Background", ramp_u16(W, H))
    doc = fake.open_document(document)
    grey = rgb(sbk, 8, 6, (128, 128, 128))  # the server's colours: the sRGB curve, 8-bit
    r = Run(sbk, qapp, doc, [("progress", 1, 100), ("preview", grey)])
    r.until(r.preview_shown)
    preview = r.run.layer.node
    r.until(lambda: preview.pixelData(W // 2, H // 2, 1, 1) != bytes(8))
    shown = fake.decode(preview.pixelData(W // 2, H // 2, 1, 1), "RGBA", "U16")[0]
    # sRGB 128/255 is 0.216 in linear light; unconverted, the layer would hold 0.502
    assert shown == pytest.approx(0.2158, abs=0.003)
    r.run.cancel()
    r.until(r.ended)


def test_a_step_that_runs_the_event_loop_is_not_entered_again(sbk, qapp, doc):
    """Krita's waitForDone runs the event loop inside a step, and with it the run's timer: the
    step already running is not entered again (Krita 6 said "Generator already executing")."""
    capture = sbk.host.capture(doc, doc.activeNode())

    def work():
        for _ in range(3):
            for _ in range(10):  # what waitForDone does
                qapp.processEvents()
                time.sleep(0.002)
            yield
        return capture

    client = ScriptedClient([("result", rgba(sbk, W, H, (10, 20, 30, 255)))])
    run = sbk.runner.StyleRun(work(), sbk.options.Options(["starry_night"]), client)
    events: list = []
    run.finished.connect(lambda node: events.append("finished"))
    run.failed.connect(events.append)
    run.start()
    deadline = time.monotonic() + 10
    while not events:
        assert time.monotonic() < deadline
        qapp.processEvents()
        time.sleep(0.005)
    assert events == ["finished"]
