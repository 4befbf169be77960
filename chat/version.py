"""The chat-server version, from one place: ``setup.cfg``.

An installed server reads it from the package metadata; a checkout that was
not installed reads ``setup.cfg`` beside the package.
"""

from __future__ import annotations

import configparser
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: The distribution name in ``setup.cfg``.
DISTRIBUTION = "chat-server"
_SETUP_CFG = Path(__file__).resolve().parent.parent / "setup.cfg"


def chat_version() -> str:
    """The version number, e.g. ``0.1.0`` (``unknown`` when nothing says)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        parser = configparser.ConfigParser()
        parser.read(_SETUP_CFG, encoding="utf-8")
        return parser.get("metadata", "version", fallback="unknown")


#: The version number of this server.
__version__ = chat_version()
