"""``make vocabulary`` (``python -m stylebridge.server.vocabulary``): write the wire package's
vocabulary.json from the declarations in core/settings.py.

The server is the layer that sees both sides: core declares the controls and presets, and the
wire package carries them to clients that cannot import core (the plug-ins). The file is
committed; tests/core/test_settings.py fails until it matches the declarations again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stylebridge.core.settings import vocabulary_json
from stylebridge.wire.vocabulary import FILE


def main() -> None:
    Path(FILE).write_text(vocabulary_json(), encoding="utf-8")
    print(f"wrote {FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
