"""
Small, composable transforms: plugins that edit or drop messages of one direction.

The public path of :mod:`nbws.builtins.transforms`, where they are written
(with the other built-in plugins)::

    from nbws import transforms

    ws.plugins.register(transforms.map_text(str.upper, direction="send"))
"""

from .builtins.transforms import (
    Transform,
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
from .builtins.transforms import (
    Which as Which,  # the type alias of their direction argument, reachable here as before
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
