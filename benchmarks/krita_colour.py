"""The Krita plug-in's colour path, timed inside real Krita 5
(testing/hosts/krita/scripts/timing.py): a 4000x3000 RGBA layer at 16-bit integer and 16/32-bit
float, linear and sRGB-curve, read into the server's content and the answer turned into the
result layer's bytes. Before issue 18: the layer's own bytes, never converted (F16 through
today's halves); now: Krita's own conversion to float sRGB and back where the profile is not
Krita's sRGB. docs/benchmarks.md, "Colour and bit depth", "Hosts".

`python -m benchmarks.krita_colour [--size 4000x3000]`
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from testing.hosts.krita import host as krita_host


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4000x3000")
    args = parser.parse_args()
    reason = krita_host.missing()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory() as tmp:
        home = krita_host.built_profile(Path(tmp))
        env = krita_host.krita_env("tcp://127.0.0.1:1", "unused", KRITA_TIMING_SIZE=args.size)
        report = krita_host.run_script(home, "timing.py", env, timeout=900)
    print(f"Krita 5, RGBA {args.size}, numpy in Krita's Python: {report.pop('numpy')}")
    report.pop("size")
    print("layer (depth, profile)        travels as   out before / after   in before / after")
    for name, t in report.items():
        print(
            f"{name:<30} {t['travels'][0]:<11}  {t['before_out']:6.2f} / {t['after_out']:6.2f} s"
            f"    {t['before_in']:6.2f} / {t['after_in']:6.2f} s"
        )


if __name__ == "__main__":
    main()
