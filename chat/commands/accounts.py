"""Account commands: AUTHENTICATE (SASL), REGISTER/VERIFY, NS and CS.

AUTHENTICATE follows IRCv3 sasl-3.1/3.2: the client names a mechanism,
then sends base64 responses in chunks of at most 400 bytes (a chunk of
exactly 400 means more follows; ``+`` alone is an empty chunk); ``*``
aborts.  Numerics 900-908 report the outcome.  While a response is being
checked, registration waits (`chat.sasl.hold_registration`).  After
registration a client may authenticate again at any time (sasl-3.2
re-authentication), to the same account or another; before registration a
second authentication gets 907.

REGISTER and VERIFY are IRCv3 draft/account-registration; e-mail
verification is off, so REGISTER logs in at once and VERIFY has nothing
to verify.  ``NS``/``NICKSERV`` and ``CS``/``CHANSERV`` talk to the
services like ``PRIVMSG NickServ`` does.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from chat import events, numerics
from chat.accounts import log_in, password_problem, registration_allowed
from chat.casemap import valid_nick
from chat.commands import command
from chat.commands.queries import HELP_TEXTS
from chat.commands.registration import try_register
from chat.message import Message
from chat.sasl import (
    MECHANISMS,
    Challenge,
    Failed,
    Session,
    Step,
    Success,
    abort,
    start,
)
from chat.services import Later
from chat.storage import Account, AccountExistsError

if TYPE_CHECKING:
    from chat.protocol import ChatProtocol
    from chat.server import ChatServer

#: The longest AUTHENTICATE parameter; a chunk this long means more follows.
CHUNK = 400
#: The longest SASL response once its chunks are joined.
MAX_RESPONSE = 8192
#: The CAP value of ``sasl`` (CAP 302).
SASL_CAP_VALUE = ",".join(MECHANISMS)


def _authenticate(conn: ChatProtocol, server: ChatServer, data: str) -> None:
    conn.send(Message("AUTHENTICATE", (data,), server.name))


def send_challenge(conn: ChatProtocol, server: ChatServer, data: bytes) -> None:
    """Send *data* base64-encoded in 400-byte chunks (``+`` ends a full one)."""
    encoded = base64.b64encode(data).decode("ascii")
    for start_at in range(0, len(encoded), CHUNK):
        _authenticate(conn, server, encoded[start_at : start_at + CHUNK])
    if len(encoded) % CHUNK == 0:
        _authenticate(conn, server, "+")


@command("AUTHENTICATE", min_params=1, registered=False)
def handle_authenticate(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    data = msg.params[0]
    if conn.account is not None and not conn.registered:
        conn.reply(numerics.ERR_SASLALREADY, "You have already authenticated")
        return
    session = conn.sasl
    if data == "*":
        abort(conn)
        return
    if session is None:
        if "sasl" not in conn.caps:
            conn.reply(numerics.ERR_SASLFAIL, "SASL authentication failed")
            return
        mechanism = start(data, server.accounts, conn)
        if mechanism is None:
            conn.reply(
                numerics.RPL_SASLMECHS, SASL_CAP_VALUE, "are available SASL mechanisms"
            )
            conn.reply(numerics.ERR_SASLFAIL, "SASL authentication failed")
            return
        conn.sasl = Session(mechanism)
        _authenticate(conn, server, "+")
        return
    if session.busy:
        abort(conn, numerics.ERR_SASLFAIL, "SASL authentication failed")
        return
    if session.discarding:
        # The rest of a response already refused: drop it up to its end,
        # rather than take its chunks for new mechanism names.
        if len(data) != CHUNK:
            conn.sasl = None
        return
    if len(data) > CHUNK:
        _refuse(conn, session, data, numerics.ERR_SASLTOOLONG, "SASL message too long")
        return
    if len(session.buffer) + len(data) > MAX_RESPONSE:
        _refuse(
            conn,
            session,
            data,
            numerics.ERR_SASLFAIL,
            "SASL authentication failed: response too long",
        )
        return
    if data != "+":
        session.buffer += data.encode("ascii", "replace")
    if len(data) == CHUNK:
        return
    try:
        response = base64.b64decode(bytes(session.buffer), validate=True)
    except binascii.Error:
        abort(conn, numerics.ERR_SASLFAIL, "SASL authentication failed")
        return
    session.buffer.clear()
    session.busy = True
    later = Later(conn)
    stepping = maybeDeferred(session.mechanism.step, response)
    stepping.addCallback(
        lambda step: later.run(lambda: _stepped(conn, server, session, step))
    )
    stepping.addErrback(later.fail, lambda: _stepped(conn, server, session, Failed()))


def _refuse(
    conn: ChatProtocol, session: Session, data: str, numeric: str, text: str
) -> None:
    """Refuse a response too long (905 for a line, 904 for the whole), and
    drop its remaining chunks if *data* says more follow."""
    conn.reply(numeric, text)
    session.buffer.clear()
    if len(data) >= CHUNK:
        session.discarding = True
    else:
        conn.sasl = None


def _stepped(
    conn: ChatProtocol, server: ChatServer, session: Session, step: Step
) -> None:
    """Answer the outcome of one SASL step."""
    session.busy = False
    method = f"SASL {session.mechanism.name}"
    if isinstance(step, Failed):
        # Logged even when the client has gone meanwhile.
        if step.throttled:
            why = "throttled"
        elif step.unavailable:
            why = "account service unavailable"
        else:
            why = "bad credentials"
        events.login_failed(conn, method, session.mechanism.attempted, why)
    if conn.closing:
        return
    if conn.sasl is not session:
        # Aborted while the check ran: registration may have waited for it.
        try_register(conn, server)
        return
    if isinstance(step, Challenge):
        send_challenge(conn, server, step.data)
        return
    if isinstance(step, Success) and (conn.account is None or conn.registered):
        # After registration this may be a re-authentication (sasl-3.2),
        # to the same account or another one.
        conn.sasl = None
        log_in(conn, server, step.account, method)
        conn.reply(numerics.RPL_SASLSUCCESS, "SASL authentication successful")
    else:
        text = "SASL authentication failed"
        if isinstance(step, Failed) and step.throttled:
            text += ": too many failed attempts, try again later"
        elif isinstance(step, Failed) and step.unavailable:
            text += ": the account service is unavailable, try again later"
        abort(conn, numerics.ERR_SASLFAIL, text)
    try_register(conn, server)


@command("REGISTER", min_params=3, registered=False)
def handle_register(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """``REGISTER <account> <email> <password>`` (draft/account-registration)."""
    name, email, password = msg.params[:3]
    if name == "*":
        name = conn.nick
    if conn.account is not None:
        conn.fail("REGISTER", "ALREADY_AUTHENTICATED", name, "You are logged in")
        return
    if name == "*" and conn.refused_nick is not None:
        # NICK was sent but refused: that nick is not available as an
        # account name (draft/account-registration: ACCOUNT_EXISTS).
        conn.fail(
            "REGISTER",
            "ACCOUNT_EXISTS",
            conn.refused_nick,
            "That nick is in use; choose another",
        )
        return
    if name == "*":
        conn.fail("REGISTER", "NEED_NICK", "*", "Choose a nick first")
        return
    if (
        not valid_nick(name, server.config.limits.nick_length)
        or name in server.services
    ):
        conn.fail("REGISTER", "BAD_ACCOUNT_NAME", name, "That name is not allowed")
        return
    settings = server.config.accounts
    if not conn.registered and not settings.registration_before_connect:
        conn.fail(
            "REGISTER",
            "COMPLETE_CONNECTION_REQUIRED",
            name,
            "Finish connecting before you register",
        )
        return
    if email == "*" and settings.email_required:
        conn.fail("REGISTER", "INVALID_EMAIL", name, "An e-mail address is required")
        return
    if email != "*" and "@" not in email:
        conn.fail("REGISTER", "INVALID_EMAIL", name, "That is not an e-mail address")
        return
    problem = password_problem(password, settings)
    if problem is not None:
        conn.fail("REGISTER", "WEAK_PASSWORD", name, problem)
        return
    later = Later(conn)

    def done(account: Account) -> None:
        def write() -> None:
            conn.send(
                Message(
                    "REGISTER",
                    ("SUCCESS", account.name, "Account created"),
                    server.name,
                )
            )
            if conn.account is None:
                log_in(conn, server, account, "REGISTER")

        later.run(write)

    def exists(failure: Failure) -> None:
        failure.trap(AccountExistsError)
        later.run(
            lambda: conn.fail(
                "REGISTER", "ACCOUNT_EXISTS", name, "That account already exists"
            )
        )

    def create(allowed: bool) -> Deferred[None] | None:
        if not allowed:
            later.run(
                lambda: conn.fail(
                    "REGISTER",
                    "TEMPORARILY_UNAVAILABLE",
                    name,
                    "Too many registrations; wait",
                )
            )
            return None
        registering = server.accounts.register(
            name, password, None if email == "*" else email
        )
        return registering.addCallbacks(done, exists)

    # The per-address limit is the network's: it may be counted elsewhere.
    creating = registration_allowed(conn, server).addCallback(create)
    later.watch(
        creating,
        lambda: conn.fail(
            "REGISTER", "TEMPORARILY_UNAVAILABLE", name, "Try again later"
        ),
    )


@command("VERIFY", min_params=2, registered=False)
def handle_verify(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    """Nothing to verify: accounts need no e-mail verification here."""
    conn.fail("VERIFY", "INVALID_CODE", msg.params[0], "No verification is pending")


def _to_service(
    conn: ChatProtocol, server: ChatServer, nick: str, msg: Message
) -> None:
    bot = server.services.find(nick)
    if bot is not None:
        bot.handle(conn, " ".join(msg.params))


@command("NS", min_params=1)
def handle_ns(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    _to_service(conn, server, "NickServ", msg)


@command("NICKSERV", min_params=1)
def handle_nickserv(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    _to_service(conn, server, "NickServ", msg)


@command("CS", min_params=1)
def handle_cs(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    _to_service(conn, server, "ChanServ", msg)


@command("CHANSERV", min_params=1)
def handle_chanserv(conn: ChatProtocol, server: ChatServer, msg: Message) -> None:
    _to_service(conn, server, "ChanServ", msg)


# HELP for this family's commands, next to the commands themselves.
HELP_TEXTS.update(
    {
        "AUTHENTICATE": (
            "AUTHENTICATE <mechanism> | AUTHENTICATE <base64 data> | AUTHENTICATE *",
            f"Log in with SASL ({', '.join(MECHANISMS)}) before registering;"
            " request the sasl capability first.",
        ),
        "REGISTER": (
            "REGISTER <account|*> <email|*> <password>",
            "Create an account (draft/account-registration) and log in to it.",
        ),
        "VERIFY": (
            "VERIFY <account> <code>",
            "Confirm an account; this server needs no e-mail verification.",
        ),
        "NS": (
            "NS <command> [<args>]",
            "Talk to NickServ, like /msg NickServ; NS HELP lists its commands.",
        ),
        "NICKSERV": (
            "NICKSERV <command> [<args>]",
            "Talk to NickServ, like /msg NickServ; NICKSERV HELP lists its commands.",
        ),
        "CS": (
            "CS <command> [<args>]",
            "Talk to ChanServ, like /msg ChanServ; CS HELP lists its commands.",
        ),
        "CHANSERV": (
            "CHANSERV <command> [<args>]",
            "Talk to ChanServ, like /msg ChanServ; CHANSERV HELP lists its commands.",
        ),
    }
)
