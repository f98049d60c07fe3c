"""Cancel mid-job: the server job stops within 2 s, the preview layer goes, nothing is added."""

import os
import runpy
import time

common = runpy.run_path(os.path.join(os.path.dirname(__file__), "common.py"))


def main():
    import stylebridge_krita
    from stylebridge_krita.stylebridge_wire import Client

    W, H = 128, 96
    doc, _source = common["new_document"](W, H)
    before = common["names"](doc)
    run = stylebridge_krita.stylize_active_layer(
        "starry_night", preset="paper", size=128, wait=False
    )
    common["pump_until"](lambda: run.job is not None, 60)  # read in pieces, then sent
    previews = []
    run.job.on_preview = lambda image, event, show=run.job.on_preview: (
        previews.append(event.step),
        show(image, event),
    )
    common["pump_until"](lambda: len(previews) >= 2, 120)
    during = common["names"](doc)
    preview_layer = run.layer.node
    preview_pixels = bytes(preview_layer.pixelData(0, 0, W, H))
    preview_locked = preview_layer.locked()
    started = time.monotonic()
    run.cancel()
    removed_after = time.monotonic() - started
    confirmed_after = common["pump_until"](lambda: run.job.done, 10)
    with Client() as client:
        status = client.status()
    return {
        "before": before,
        "during": during,
        "after": common["names"](doc),
        "preview_opaque": sum(preview_pixels[3::4]) / (W * H * 255),
        "preview_locked": preview_locked,
        "removed_after": removed_after,
        "confirmed_after": confirmed_after,
        "job_cancelled": run.job.cancelled,
        "server_running": status.running,
        "server_queue": status.queue,
    }
