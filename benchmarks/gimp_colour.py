"""The GIMP plug-in's pixel edge, timed inside real GIMP 3.0 and 3.2
(testing/hosts/gimp/timing_case.py): a 4000x3000 16-bit RGBA layer read as float sRGB through babl
(`read_buffer`) and written back (`write_result`'s GEGL write), perceptual and linear, in
GIMP's sRGB and in Display P3. GIMP's path did not change for issue 18: one set of figures.
docs/benchmarks.md, "Colour and bit depth", "Hosts".

`python -m benchmarks.gimp_colour [--size 4000x3000]`
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from testing.colour_set import profiles
from testing.hosts.gimp import harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4000x3000")
    args = parser.parse_args()
    size = [int(v) for v in args.size.split("x")]
    for host in harness.HOSTS:
        reason = harness.missing_reason(host)
        if reason:
            print(reason)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            profile = harness.install_profile(work)
            (work / "p3.icc").write_bytes(profiles()["p3"])
            spec = {"size": size, "p3": str(work / "p3.icc"), "out": str(work / "out.json")}
            (work / "spec.json").write_text(json.dumps(spec))
            env = {"GIMP3_DIRECTORY": str(profile), "STYLEBRIDGE_TIMING": str(work / "spec.json")}
            script = harness.HERE / "timing_case.py"
            done = harness.run(
                harness.batch_args(script, host=host), timeout=900, binds=[work], env=env, host=host
            )
            if done.returncode != 0:
                raise SystemExit(f"{host.label} failed:\n{done.stderr[-3000:]}")
            report = json.loads((work / "out.json").read_text())
        print(f"{host.label}, RGBA {args.size}")
        for name, t in report.items():
            print(f"  {name:<22} out {t['out']:6.2f} s   in {t['in']:6.2f} s")


if __name__ == "__main__":
    main()
