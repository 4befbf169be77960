"""Numeric replies in words, and which buffer each belongs to.

Servers already put a human sentence in the last parameter of most
numerics; this module adds the subject (which nick, which channel) and
rewrites the replies whose parameters mean nothing to a person as they
arrive (WHOIS, WHO, LIST, NAMES, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chat.message import Message

Describe = Callable[[tuple[str, ...]], str | None]


def _clock(value: str) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(int(value)))
    except ValueError:
        return value


def _duration(value: str) -> str:
    try:
        seconds = int(value)
    except ValueError:
        return value
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{seconds}s")
    return " ".join(parts)


def _whois_idle(p: tuple[str, ...]) -> str:
    text = f"{p[1]} has been idle {_duration(p[2])}"
    if len(p) > 4:
        text += f", signed on {_clock(p[3])}"
    return text


#: Numerics rewritten from their parameters (``p[0]`` is our own nick).
#: ``None`` as a result hides the reply (end-of-list markers and the like).
DESCRIBE: dict[str, Describe] = {
    "004": lambda p: f"{p[1]} running {p[2]}" if len(p) > 2 else None,
    "221": lambda p: f"Your user modes: {p[1]}",
    "301": lambda p: f"{p[1]} is away: {p[-1]}",
    "305": lambda p: "You are no longer marked as away",
    "306": lambda p: "You are now marked as away",
    "311": lambda p: f"{p[1]} is {p[2]}@{p[3]} ({p[-1]})",
    "312": lambda p: f"{p[1]} is on {p[2]} ({p[-1]})",
    "313": lambda p: f"{p[1]} is an IRC operator",
    "314": lambda p: f"{p[1]} was {p[2]}@{p[3]} ({p[-1]})",
    "317": _whois_idle,
    "318": lambda p: None,
    "319": lambda p: f"{p[1]} is on {p[-1]}",
    "324": lambda p: f"Modes of {p[1]}: {' '.join(p[2:])}",
    "329": lambda p: f"{p[1]} was created {_clock(p[2])}",
    "330": lambda p: f"{p[1]} is logged in as {p[2]}",
    "331": lambda p: f"No topic is set for {p[1]}",
    "333": lambda p: (
        f"Topic set by {p[2].split('!')[0]} on {_clock(p[3])}" if len(p) > 3 else None
    ),
    "338": lambda p: f"{p[1]} is actually using host {p[2]}",
    "341": lambda p: f"Invited {p[1]} to {p[2]}",
    "315": lambda p: None,
    "352": lambda p: (
        f"{p[5]} ({p[2]}@{p[3]}) {p[6]} on {p[1]}: {p[-1].partition(' ')[2]}"
    ),
    "353": lambda p: f"People on {p[2]}: {p[3]}",
    "366": lambda p: None,
    "369": lambda p: None,
    "321": lambda p: "Channels (name, users, topic):",
    "322": lambda p: f"{p[1]}  {p[2]} users  {p[-1]}",
    "323": lambda p: "End of channel list",
    "367": lambda p: f"Ban on {p[1]}: {p[2]}",
    "368": lambda p: None,
    "381": lambda p: "You are now an IRC operator",
    "396": lambda p: f"Your displayed host is now {p[1]}",
    "433": lambda p: f"The nick {p[1]} is already in use",
    "900": lambda p: f"Logged in as {p[2]}",
    "901": lambda p: "Logged out",
}

#: Replies to commands a person typed: they go to the buffer the command
#: came from (WHOIS, WHO, LIST, MODE, ...), not to the server buffer.
ANSWERS = frozenset(
    {
        "221",
        "301",
        "305",
        "306",
        "311",
        "312",
        "313",
        "314",
        "317",
        "319",
        "321",
        "322",
        "323",
        "330",
        "338",
        "341",
        "352",
        "353",
        "332",
        "333",
        "324",
        "329",
        "331",
        "367",
        "378",
        "379",
        "671",
        "276",
        "320",
    }
)


#: Without labeled-response, which numerics answer a typed command, and which
#: of them end the answer: command -> (replies, last replies).
REPLIES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    command: (frozenset(numerics.split()), frozenset(ends.split()))
    for command, numerics, ends in (
        ("LIST", "321 322 323", "323"),
        ("WHOIS", "276 301 311 312 313 317 318 319 320 330 338 378 379 671", "318"),
        ("WHOWAS", "312 314 369 406", "369"),
        ("WHO", "352 354 315", "315"),
        ("NAMES", "353 366", "366"),
        ("TOPIC", "331 332 333", "331 333"),
        ("MODE", "221 324 329 367 368 346 347 348 349", "221 329 368 347 349"),
        ("INVITE", "341", "341"),
        ("AWAY", "305 306", "305 306"),
        ("ISON", "303", "303"),
        ("USERHOST", "302", "302"),
        ("MOTD", "375 372 376 422", "376 422"),
    )
}


def describe(message: Message) -> str | None:
    """The words to show for numeric *message*, or ``None`` to hide it."""
    params = message.params
    rewrite = DESCRIBE.get(message.command)
    if rewrite is not None:
        try:
            return rewrite(params)
        except IndexError:
            pass
    body = params[1:]
    if not body:
        return message.command
    *subject, text = body
    if not subject:
        return text
    if all(word.isdigit() for word in subject):
        # LUSERS style: "3 :users online", or the numbers repeated in the text.
        if all(word in text for word in subject):
            return text
        return " ".join(body)
    if text[:1].islower():
        return f"{' '.join(subject)} {text}"
    return f"{' '.join(subject)}: {text}"


def is_error(message: Message) -> bool:
    """Error numerics (400-599) and SASL failures."""
    command = message.command
    if command in _NOT_ERRORS:
        return False
    return command.isdigit() and (400 <= int(command) < 600 or command in _SASL_FAIL)


#: Numerics in the error range that are just information.
_NOT_ERRORS = {"422"}
_SASL_FAIL = {"902", "904", "905", "906", "908"}
