"""Start-up checks made before twistd daemonizes.

A port already in use or a directory that cannot be created would otherwise
surface after the fork, as a traceback (in the foreground) or as twistd's
message cut at 100 bytes (as a daemon).  Checked first, each is one
`ConfigError` line on the terminal.  The real listen still decides; these
checks only make the common failures readable.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from pathlib import Path

from chat.config import ConfigError

#: Endpoint types whose address can be checked, with their default interface.
_TCP_TYPES = {"tcp": "", "ssl": "", "tcp6": "::"}
#: Where an endpoint description splits: a colon not escaped by a backslash.
_FIELD = re.compile(r"(?<!\\):")


def _fields(description: str) -> tuple[list[str], dict[str, str]]:
    """The positional and keyword fields of an endpoint description."""
    positional: list[str] = []
    keywords: dict[str, str] = {}
    for item in _FIELD.split(description):
        item = item.replace("\\:", ":")
        key, equals, value = item.partition("=")
        if equals:
            keywords[key] = value
        else:
            positional.append(item)
    return positional, keywords


def tcp_address(description: str) -> tuple[str, int] | None:
    """``(interface, port)`` a TCP endpoint *description* binds, or None
    when it is not TCP, its port is 0 (any) or it cannot be read."""
    positional, keywords = _fields(description)
    if not positional or positional[0] not in _TCP_TYPES:
        return None
    kind, args = positional[0], positional[1:]
    port_text = keywords.get("port", args[0] if args else "")
    interface = keywords.get("interface", "")
    if not interface and kind == "tcp" and len(args) > 1:
        interface = args[1]
    if not port_text.isdigit() or int(port_text) == 0:
        return None
    return interface or _TCP_TYPES[kind], int(port_text)


def check_port(description: str, address: tuple[str, int]) -> None:
    """Raise `ConfigError` if *address* cannot be bound right now."""
    interface, port = address
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As Twisted's listening ports do: a port in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((interface, port))
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.EADDRINUSE:
            reason += " (is another server running?)"
        elif error.errno == errno.EACCES:
            reason += " (ports below 1024 need root)"
        raise ConfigError(f"cannot listen on {description}: {reason}") from None


def check_listeners(descriptions: list[str]) -> None:
    """Check that every TCP listener in *descriptions* can bind its port,
    and that no two of them want the same one."""
    seen: dict[tuple[str, int], str] = {}
    for description in descriptions:
        inner = description.removeprefix("tls:")
        if inner[:1].isdigit():
            inner = f"tcp:{inner}"
        address = tcp_address(inner)
        if address is None:
            continue
        if address in seen:
            raise ConfigError(
                f"cannot listen on {description}: {seen[address]} uses that port"
            )
        seen[address] = description
        check_port(description, address)


def check_directory(path: Path, what: str) -> None:
    """Raise `ConfigError` unless *path* is, or can be made, a writable directory.

    Nothing is created here: the directory is made later by the server
    itself, after twistd may have switched to another user (``--uid``).
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"cannot create the {what} {path}: {existing} is not a directory"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "use" if existing == path else "create"
        raise ConfigError(
            f"cannot {verb} the {what} {path}: {existing} is not writable"
        )
