"""
Small, composable transforms: plugins that edit or drop messages of one direction.

The public path of :mod:`nbws.builtins.transforms`, where they are written
(with the other built-in plugins)::

    from nbws import transforms

    ws.plugins.register(transforms.map_text(str.upper, direction="send"))
"""

from .builtins.transforms import (
    Transform,
    Which,
    chain,
    drop_if,
    json_pretty,
    keep_if,
    map_binary,
    map_decoded,
    map_json,
    map_text,
    redact_keys,
    transform,
)

__all__ = [
    "Transform",
    "chain",
    "drop_if",
    "json_pretty",
    "keep_if",
    "map_binary",
    "map_decoded",
    "map_json",
    "map_text",
    "redact_keys",
    "transform",
]
__all__ += ["Which"]  # a type alias, public before __all__ listed it
