"""The host plug-ins as the Python package carries them (``stylebridge.plugins``): their sources
as package data, and `dist` (``make dist``, ``stylebridge install``) to lay them out."""
