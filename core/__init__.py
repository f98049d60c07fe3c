"""stylebridge.core: the style transfer engine, a pure library (no networking)."""

__version__ = "0.1.0"
