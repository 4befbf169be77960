"""Traffic counting: IRC bytes and lines between the transports and the server.

Every client connection's transport (`chat.transport`) counts the IRC bytes
both ways and the lines received (after TLS) into one shared `Traffic`,
read by the metrics page (`chat.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Traffic:
    """IRC bytes and lines received from and sent to clients."""

    bytes_in: int = 0
    bytes_out: int = 0
    lines_in: int = 0
