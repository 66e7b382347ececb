"""
nbws's own behaviour, written as ordinary plugins (as datasette writes its defaults).

* :mod:`nbws.builtins.handshake`: a server's path, origins and token checks
  (``"nbws.handshake"``);
* :mod:`nbws.builtins.errors`: logging errors no handler took (``"nbws.errors"``).

Both are registered in :data:`nbws.default_plugins` when ``nbws`` is imported;
disable, unregister or replace them there by name.
"""

__all__: list[str] = []
