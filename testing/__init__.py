"""What the tests and the benchmarks both use, so that neither imports the other: real server
processes (`servers`), the load of many clients (`load`), hostile messages and their oracle
(`fuzz`), a scripted raw ZMTP peer (`zmtp_server`), the colour test set (`colour_set`), the
plug-ins loaded as they install (`plugins`) and the real hosts driven from outside
(`hosts.krita`, `hosts.gimp`).

Not installed: like tests/ and benchmarks/, it is imported from the repository's root.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
