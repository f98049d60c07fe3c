"""Stand-ins for what the tests cannot have: Krita's ``krita`` module (`krita`), GIMP's
``gi.repository`` (`gimp`), a scripted raw-TCP ZMTP server (`zmtp_server`) and a scripted
stylebridge client for the plug-ins' job runners (`client`)."""
