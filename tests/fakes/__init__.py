"""Stand-ins for what the tests cannot have: Krita's ``krita`` module (`krita`), GIMP's
``gi.repository`` (`gimp`) and a scripted stylebridge client for the plug-ins' job runners
(`client`). The scripted raw-TCP ZMTP server is testing/zmtp_server.py (the benchmarks use it
too)."""
