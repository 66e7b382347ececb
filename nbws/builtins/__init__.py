"""
The built-in plugins: behaviour nbws ships, written as ordinary plugins.

Each is a plugin like any other (datasette's ``DEFAULT_PLUGINS`` approach):
it implements hooks of :mod:`nbws.hookspecs`, is registered with
``plugins.register(...)`` (globally or on one endpoint), shows in
``plugins.list()`` under its name, and can be unregistered or replaced by a
plugin of your own.

Registered by default, in :data:`nbws.default_plugins` when ``nbws`` is
imported (disable, unregister or replace them there by name):

* :mod:`~nbws.builtins.handshake` — a server's path, origins and token checks
  (``"nbws.handshake"``);
* :mod:`~nbws.builtins.errors` — logging errors no handler took (``"nbws.errors"``).

Registered by you, where you want them:

* :mod:`~nbws.builtins.logger` — :class:`~nbws.Logger`: every event to
  :mod:`logging`, and optionally to a JSON-lines file (through the shared
  writer of :mod:`nbws.recording.jsonl`);
* :mod:`~nbws.builtins.transforms` — ``nbws.transforms``: small plugins that
  edit or drop messages (``map_text``, ``map_json``, ``redact_keys``...);
* :mod:`~nbws.builtins.intercept` — :class:`~nbws.Intercept`: hold messages
  until each is forwarded, edited or dropped;
* :mod:`~nbws.builtins._common` — helpers they share (registration names, URLs).

The :class:`~nbws.Recorder` is a built-in plugin too; it lives with the
recording formats in :mod:`nbws.recording`. The old module paths
(``nbws.logger``, ``nbws.transforms``, ``nbws.intercept``) still import:
they re-export these modules' names.
"""

__all__: list[str] = []
