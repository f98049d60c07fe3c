"""The real hosts, driven from outside: Krita 5 and 6 (`krita.host`, with the scripts it runs
inside Krita) and GIMP 3.0 and 3.2 (`gimp.harness`, with the cases it runs inside GIMP), in
the roots `make hosts` builds. The end-to-end tests (tests/e2e/) and the hosts' benchmarks
(benchmarks/krita_colour.py, gimp_colour.py) both drive them."""
