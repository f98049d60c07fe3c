"""What issue 28 added to the Krita dialog, on the fake ``krita`` module with a scripted server
(tests/fakes): Apply that starts no server twice, the style from an open document or layer,
the estimate under the settings, More style / Less style with the earlier result kept hidden,
the result's notes, and large layers read and written in slices. The real Krita 5 and 6 run
the same in tests/e2e/krita."""

from __future__ import annotations

import pytest

from testing.plugins import pump_until
from tests.fakes import krita as fake
from tests.fakes.client import ESTIMATE, ScriptedClient

W, H = 48, 32
STYLE = "The Starry Night (van Gogh)"


def bgra(width: int, height: int, pixel: tuple[int, int, int, int]) -> bytes:
    return bytes(pixel) * (width * height)


@pytest.fixture
def painting(krita_app):
    """The painter's document (Background active, a Reference layer above) and a reference
    document open beside it."""
    reference = fake.Document(30, 20)
    reference.add_layer("Paint", bgra(30, 20, (200, 40, 10, 255)))  # BGRA: blue-ish
    reference.title, reference.path = "reference", "/home/zoë/refs/sunset.kra"
    fake.open_document(reference)
    document = fake.Document(W, H)
    source = document.add_layer("Background", bgra(W, H, (40, 80, 120, 255)))
    document.add_layer("Reference", bgra(W, H, (0, 200, 0, 255)))
    document.setActiveNode(source)
    fake.open_document(document)
    return document, source


@pytest.fixture
def client(sbk, monkeypatch):
    """The scripted server every client of the dialog talks to."""
    scripted = ScriptedClient()
    monkeypatch.setattr(sbk.stylebridge_wire.server_watch, "Client", lambda *a, **k: scripted)
    return scripted


def dialog_of(sbk, **kwargs):
    return sbk.dialog.StyleDialog(sbk.canvas.ActiveCanvas(), sbk.prefs.Prefs(), **kwargs)


def apply_and_wait(qapp, dialog) -> None:
    dialog.apply()
    pump_until(qapp, lambda: dialog.run is not None and dialog.run.ended)


def test_an_open_document_or_layer_is_a_style_with_its_thumbnail(sbk, qapp, painting, client):
    dialog = dialog_of(sbk)
    dialog._fill_add_menu()
    actions = {a.text(): a for a in dialog.add_menu.actions() if a.text()}
    assert "sunset.kra" in actions  # the other open document, by its file's name
    assert "Layer: Reference" in actions and "Layer: Background" in actions
    assert not actions["sunset.kra"].icon().isNull()  # with its thumbnail
    reference = next(s for s in dialog.canvas.styles() if s.title == "sunset.kra")
    dialog.style_table.removeRow(0)
    dialog.add_style(reference)
    assert dialog.style_table.item(0, 0).text() == "sunset.kra"
    apply_and_wait(qapp, dialog)
    style = client.submits[0]["styles"][0]
    # the reference's projection as the server gets it: RGB, its colour (BGRA 200, 40, 10)
    assert (style.width, style.height, style.channels) == (30, 20, 3)
    assert style.data[:3] == bytes((10, 40, 200))
    assert dialog.last_node.name() == "sunset · Fast · style 0.5"
    # a canvas style is not kept in the preferences (the document may be gone next time)
    assert dialog.prefs.get("styles") == ""
    dialog.close()


def test_the_estimate_shows_under_the_settings_and_follows_them(sbk, qapp, painting, client):
    dialog = dialog_of(sbk)
    dialog.show()
    pump_until(qapp, lambda: dialog.estimate.text())
    assert dialog.estimate.text() == "About 40 s for this layer on this machine."
    query = client.begun[-1]
    assert (query.width, query.height, query.preset) == (W, H, "fast")
    dialog.fields["size"].set(256)
    pump_until(qapp, lambda: client.begun[-1].controls.get("size") == 256)
    assert type(client.begun[-1]).__name__ == "EstimateQuery" and ESTIMATE == 42.0
    dialog.close()


def test_more_style_reruns_the_last_job_and_keeps_the_last_result_hidden(
    sbk, qapp, painting, client
):
    document, source = painting
    dialog = dialog_of(sbk)
    dialog.fields["balance"].set(0.5)
    assert not dialog.more_button.isEnabled()  # nothing to run again yet
    apply_and_wait(qapp, dialog)
    first = dialog.last_node
    assert first.name() == f"{STYLE} · Fast · style 0.5" and dialog.more_button.isEnabled()
    document.setActiveNode(first)  # the painter looks at the result: More style still
    source.setPixelData(bgra(W, H, (1, 1, 1, 255)), 0, 0, W, H)  # ... runs the same pixels
    dialog.more_button.click()
    pump_until(qapp, lambda: dialog.run.ended and dialog.last_node is not first)
    second = dialog.last_node
    assert second.name() == f"{STYLE} · Fast · style 0.7"
    assert [s["controls"]["balance"] for s in client.submits] == [0.5, 0.7]
    assert client.submits[1]["content"] is client.submits[0]["content"]  # no second capture
    assert client.submits[1]["styles"] is client.submits[0]["styles"]  # the same style pixels
    assert not first.visible() and second.visible()  # kept, hidden, to compare
    assert document.names() == ["Background", second.name(), first.name(), "Reference"]
    assert dialog.fields["balance"].value() == 0.7
    dialog.less_button.click()
    pump_until(qapp, lambda: dialog.run.ended and dialog.last_node is not second)
    assert client.submits[2]["controls"]["balance"] == 0.5 and not second.visible()
    dialog.close()


def test_notes_of_the_result_are_said(sbk, qapp, painting, monkeypatch):
    note = "The style is shown at 5x its own pixels: give a larger style image."
    scripted = ScriptedClient([("result", None, [note, 7])])
    monkeypatch.setattr(sbk.stylebridge_wire.server_watch, "Client", lambda *a, **k: scripted)
    dialog = dialog_of(sbk)
    apply_and_wait(qapp, dialog)
    assert dialog.message.text().endswith("\n" + note)  # strings only: the 7 is left out
    dialog.close()


def test_a_large_layer_is_read_converted_and_written_in_slices(sbk, qapp, krita_app):
    """A linear-light 16-bit layer: Krita converts it to float sRGB band by band; the bands
    put together are the one-piece conversion, and the result comes back the same way."""
    width, height = 400, 300
    document = fake.Document(width, height, "RGBA", "U16", profile="sRGB-elle-V2-g10.icc")
    pixels = fake.ramp(width * height * 8)
    source = document.add_layer("Background", pixels)
    fake.open_document(document)
    work = sbk.host.capture_steps(document, source)
    pieces = 0
    while True:
        try:
            next(work)
        except StopIteration as end:
            cap = end.value
            break
        pieces += 1
    assert pieces > 1  # bands, each short enough for Krita's event loop
    working = ("RGBA", "F32", sbk.host.WORKING_PROFILES["RGBA"])
    whole = fake.convert(pixels, ("RGBA", "U16", "sRGB-elle-V2-g10.icc"), working)
    assert cap.content.data == whole
    assert len([d for d in krita_app.created if d.closed]) == len(krita_app.created) == 1
    layer = sbk.host.ResultLayer(cap, "result")
    node = sbk.slices.run_to_end(layer.finish_steps(cap.content))
    back = fake.decode(node.pixelData(0, 0, width, height), "RGBA", "U16")
    original = fake.decode(pixels, "RGBA", "U16")
    assert max(abs(a - b) for a, b in zip(back, original, strict=True)) * 65535 <= 1


def test_bands_follow_the_time_each_took(sbk):
    bands = sbk.slices.Bands(10_000, 1000)
    first = bands.rows
    assert first == sbk.slices.FIRST_BAND_PIXELS // 1000
    bands.took(sbk.slices.BAND_S * 4, first)  # four times too slow: a quarter as many rows
    assert bands.rows == round(first / 4)
    bands.took(1e-6, bands.rows)  # very fast: as large as a band may be
    assert bands.rows == sbk.slices.MOST_BAND_PIXELS // 1000
    assert sum(rows for _, rows in sbk.slices.Bands(1001, 7)) == 1001


def test_a_conversions_bands_are_whole_tile_rows_however_slow_a_band_is(sbk):
    """Krita converts whole 64 x 64 tiles: a slow conversion must not shrink the bands below
    one tile row (a 12-megapixel layer took 300 s to read in 1-row bands, 9 s in tile rows)."""
    tile = sbk.host.TILE_ROWS
    bands = sbk.slices.Bands(3000, 4000, sbk.host.SCRATCH_ROWS, tile)
    assert bands.rows == tile  # 16 rows would be the first guess at this width
    bands.took(1.0, tile)  # 20 times slower than BAND_S
    assert bands.rows == tile
    bands.took(sbk.slices.BAND_S / 5, tile)  # 5 times faster: 320 rows, whole tiles
    assert bands.rows == 5 * tile
    pieces = list(sbk.slices.Bands(1000, 4000, sbk.host.SCRATCH_ROWS, tile))
    assert all(rows % tile == 0 for _, rows in pieces[:-1])
    assert sum(rows for _, rows in pieces) == 1000


def test_a_wide_band_is_converted_in_pieces_of_whole_tile_columns(sbk, krita_app, monkeypatch):
    """Each piece of a band converts a few tile columns, with Krita's event loop between them;
    put together they are the band converted at once."""
    monkeypatch.setattr(sbk.host, "PIECE_S", 1e-9)  # every piece too slow: one tile column
    width, rows = 200, 3
    linear = sbk.host.Space("RGBA", "U16", "sRGB-elle-V2-g10.icc")
    converter = sbk.host.Converter(width, rows, linear, sbk.host.Space.working("RGBA"))
    data = fake.ramp(width * rows * 8)
    whole = converter.convert(data, width, rows)
    converter.columns = sbk.host.TILE_ROWS
    work = converter.convert_steps(data, width, rows)
    pieces = 0
    while True:
        try:
            next(work)
            pieces += 1
        except StopIteration as end:
            assert end.value == whole
            break
    converter.close()
    assert pieces == 4  # 64 + 64 + 64 + 8 columns
    assert converter.columns % sbk.host.TILE_ROWS == 0
