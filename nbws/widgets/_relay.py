"""The relay's panel (placeholder, replaced below)."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets


class RelayPanel(widgets.VBox):  # type: ignore[misc]
    def __init__(self, relay: Any) -> None:
        super().__init__([])
        self.relay = relay
