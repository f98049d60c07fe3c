"""Errors the engine raises on purpose: each one is a message for a person, not a traceback."""


class StyleBridgeError(Exception):
    """Base of every error stylebridge raises deliberately."""


class InputError(StyleBridgeError):
    """A bad input: ``str(e)`` is one line naming the file (or field) and what is wrong."""


class WeightsError(StyleBridgeError):
    """No usable VGG16 weights: the message lists every source tried and how to fix it."""
