"""stylebridge for Krita: neural style transfer through the local stylebridge server.

Tools > Scripts > Style Transfer... opens the dialog; scripts call `stylize_active_layer`.
"""

from .api import StyleTransferError, stylize_active_layer

__all__ = ["StyleTransferError", "extension", "stylize_active_layer"]

extension = None  # the registered Extension, inside Krita

try:
    from krita import Krita
except ImportError:  # imported outside Krita (unit tests): no extension to register
    pass
else:
    from .extension import StyleBridgeExtension

    extension = StyleBridgeExtension(Krita.instance())
    Krita.instance().addExtension(extension)
