"""Colour in the real Kritas (issue 18): documents in other profiles than Krita's sRGB round-trip
through the plug-in at balance 0, on Krita 5 and Krita 6, with the fixtures of
test_krita_e2e.py (its own module: its own server)."""

from __future__ import annotations

import numpy as np

from testing import colour_set
from tests.e2e.krita import test_krita_e2e as base
from tests.e2e.krita.test_krita_e2e import KRITA5, KRITA6, on_kritas

krita, plugin_zip = base.krita, base.plugin_zip  # its fixtures, found here by name


@on_kritas(KRITA5, KRITA6)
def test_documents_in_other_profiles_round_trip_through_srgb_within_one_8_bit_step(krita):
    r = krita("colour.py")
    pattern = None
    for name in ("srgb-u8", "linear-f32", "linear-f16", "linear-u16", "clay-u16",
                 "rec2020-linear-f32"):  # fmt: skip
        c = r[name]
        depth = c["doc_space"][1]
        assert c["result_space"] == c["doc_space"], name  # the result layer in its own space
        # Krita's sRGB is sent as it is (8 bits): the pattern's colours; every other space is
        # converted by Krita to float sRGB: the same colours, within the depth's precision
        assert c["sent_dtype"] == ("uint8" if name == "srgb-u8" else "float32"), name
        sent = np.reshape(c["sent"], (-1, 4)) / (255 if name == "srgb-u8" else 1)
        pattern = sent if pattern is None else pattern
        sent_error = float(np.abs(sent - pattern).max())
        # the round trip compared colour-managed: the result and the source, both as float sRGB
        back_error = float(np.abs(np.reshape(c["result_srgb"], (-1, 4)) - sent).max())
        source, result = (np.array(c[k], np.float64) for k in ("source", "result"))
        stored_error = float(np.abs(result - source).max())  # as stored, 0..1 of full scale
        lab = [np.reshape(c[k], (-1, 4))[:, :3] for k in ("source_lab", "result_lab")]
        assert 90 < lab[0][:, 0].max() <= 100.5  # Krita's Lab: L of 0..100
        de = colour_set.colour.delta_E(lab[0], lab[1], method="CIE 2000")
        print(f"{krita.which} {name} ({depth} {c['doc_space'][2]}): sent max "
              f"{sent_error * 255:.4f}/255, round trip max {back_error * 255:.4f}/255 in sRGB, "
              f"{stored_error * 255:.4f}/255 as stored, CIEDE2000 mean {de.mean():.6f} "
              f"max {de.max():.6f}")  # fmt: skip
        assert sent_error <= 1 / 255 and back_error <= 1 / 255, name
        assert de.mean() < 0.05 and de.max() < 0.5, name
    assert r["documents_left"] == []  # the scratch documents were closed


@on_kritas(KRITA5, KRITA6)
def test_hdr_highlights_and_colours_outside_srgb_survive_a_round_trip(krita):
    # scripts/hdr.py: float documents holding linear 4.0 and 16.0 and pure Rec. 2020 primaries;
    # Krita converts them to its unbounded float sRGB, the server keeps what lies beyond 0..1
    r = krita("hdr.py")
    for name in ("hdr-linear-f32", "hdr-linear-f16", "wide-rec2020-f32", "hdr-srgb-f32"):
        c = r[name]
        assert c["result_space"] == c["doc_space"], name
        assert c["sent_dtype"] == "float32", name
        special = c["special"]
        sent = np.reshape(c["sent"], (-1, 4))[special, :3]
        source, result = (np.reshape(c[k], (-1, 4)) for k in ("source", "result"))
        assert source[special, :3].max() > 1.5, name  # the document does hold them
        # they crossed beyond 0..1: above it (HDR) or below it (outside sRGB's gamut)
        assert sent.max() > 1.5 or sent.min() < -0.5, name
        error = np.abs(result - source) / np.maximum(1, np.abs(source))  # relative beyond 1
        hdr_error = float(np.abs(result - source)[special].max())
        lab = [np.reshape(c[k], (-1, 4))[:, :3] for k in ("source_lab", "result_lab")]
        de = colour_set.colour.delta_E(lab[0], lab[1], method="CIE 2000")
        print(f"{krita.which} {name} ({c['doc_space'][1]} {c['doc_space'][2]}): sent "
              f"{sent.min():.4f}..{sent.max():.4f}, special pixels max abs error {hdr_error:.2e}"
              f" (of {source[special, :3].max():g}), all pixels max relative {error.max():.2e},"
              f" CIEDE2000 mean {de.mean():.6f} max {de.max():.6f}")  # fmt: skip
        # F16 holds 11 significant bits: 4.0 lies on a step of 1/256
        assert error.max() <= (1e-3 if c["doc_space"][1] == "F16" else 1e-4), name
        if name == "wide-rec2020-f32":  # Lab of colours outside sRGB: the same colours back
            assert de.mean() < 0.01 and de.max() < 0.1, name
    assert r["documents_left"] == []
