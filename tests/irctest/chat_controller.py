"""irctest controller for this server (``twistd -n chat``).

Not a trial test: irctest (github progval/irctest) loads it with
``pytest --controller irctest.controllers.chat_controller`` once it is linked
into ``irctest/controllers/`` (see README.md beside this file).  Each test
gets a fresh data directory, a plaintext listener on 127.0.0.1 only, the
server name ``My.Little.Server``, the operator ``operuser``/``operpassword``
and accounts registered through NickServ.

``CHAT_BIN`` names the directory holding this project's ``twistd`` and
``python`` (default: the ``.venv/bin`` of the checkout this file is in).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from pathlib import Path

from irctest import patma
from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.cases import BaseServerTestCase
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities, OptionalBehaviors

#: The checkout's virtualenv, found through the real path of this file.
DEFAULT_BIN = Path(__file__).resolve().parent.parent.parent / ".venv" / "bin"

#: The longest IRC line, CR LF included.
LINE_BYTES = 512
#: Attempts of ``chat.admin create`` while the database is busy.
ADMIN_TRIES = 5
#: Seconds NickServ may take to answer REGISTER.
REGISTER_TIMEOUT = 10

CONFIG = """\
server-name = "My.Little.Server"
network = "ChatTest"
data-dir = {data_dir}
cert-dir = {cert_dir}
{password}
[operators]
operuser = "{oper_hash}"

[accounts]
min-password-length = 3
max-password-length = 1024
registration-before-connect = {before_connect}
email-required = {email_required}

[limits]
nick-length = 32
channel-length = 64
# irctest sends bursts (1000 AUTHENTICATE lines, say); Ergo's set-up has no
# fakelag either.
fakelag-exempt = ["127.0.0.1"]
"""


def _bin(name: str) -> str:
    return str(Path(os.environ.get("CHAT_BIN", DEFAULT_BIN)) / name)


@functools.cache
def hash_password(password: str) -> str:
    """A hash of *password* made by the server's own ``chat.passwords``."""
    return subprocess.run(
        [_bin("python"), "-m", "chat.passwords"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _toml_bool(value: bool) -> str:
    return "true" if value else "false"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ChatController(BaseServerController, DirectoryBasedController):
    """Runs ``twistd -n chat`` with a fresh configuration for each test."""

    software_name = "chat-server"
    _port_wait_interval = 0.05
    supported_sasl_mechanisms = {"PLAIN", "EXTERNAL", "SCRAM-SHA-256"}
    supports_sts = False
    extban_mute_char = "m"

    capabilities = frozenset(
        (
            Capabilities.ACCOUNT_NOTIFY,
            Capabilities.ACCOUNT_TAG,
            Capabilities.AWAY_NOTIFY,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.EXTENDED_JOIN,
            Capabilities.LABELED_RESPONSE,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
            Capabilities.SETNAME,
        )
    )

    optional_behaviors = frozenset(
        (
            OptionalBehaviors.BAN_EXCEPTION_MODE,
            OptionalBehaviors.CAP_REQ_MINUS,
            OptionalBehaviors.ELIST_C,
            OptionalBehaviors.ELIST_M,
            OptionalBehaviors.ELIST_N,
            OptionalBehaviors.ELIST_T,
            OptionalBehaviors.ELIST_U,
            OptionalBehaviors.INVITE_EXCEPTION_MODE,
            OptionalBehaviors.INVITE_LIST,
            OptionalBehaviors.INVITE_OVERRIDES_LIMIT,
            OptionalBehaviors.MULTI_JOIN,
            OptionalBehaviors.MULTI_KICK,
            OptionalBehaviors.MULTI_NAMES_COMMAND,
            OptionalBehaviors.MULTI_PRIVMSG,
            OptionalBehaviors.NO_CTCP,
            OptionalBehaviors.SASL_AFTER_REGISTRATION,
        )
    )

    isupport = {
        "BOT": "B",
        "CASEMAPPING": "rfc1459",
        "ELIST": patma.ANYSTR,
        "INVEX": "I",
        "MONITOR": patma.ANYSTR,
        "MSGREFTYPES": "msgid,timestamp",
        "PREFIX": "(ov)@+",
        "STATUSMSG": "@+",
        "TARGMAX": patma.ANYSTR,
        "UTF8ONLY": None,
        "WHOX": None,
    }

    def create_config(self) -> None:
        super().create_config()
        with self.open_file("chat.toml"):
            pass

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: str | None,
        ssl: bool,
        run_services: bool,
        faketime: str | None,
        websocket_hostname: str | None = None,
        websocket_port: int | None = None,
    ) -> None:
        if ssl:
            raise NotImplementedByController("TLS listener in irctest")
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        assert self.proc is None
        self.create_config()
        assert self.directory
        self.port = port
        self.hostname = hostname
        data_dir = self.directory / "data"
        config = CONFIG.format(
            data_dir=_toml_string(str(data_dir)),
            cert_dir=_toml_string(str(data_dir / "certs")),
            password=f"password = {_toml_string(password)}" if password else "",
            oper_hash=hash_password("operpassword"),
            before_connect=_toml_bool(
                self.test_config.account_registration_before_connect
            ),
            email_required=_toml_bool(
                self.test_config.account_registration_requires_email
            ),
        )
        with self.open_file("chat.toml", "w") as fd:
            fd.write(config)
        faketime_cmd: list[str] = []
        if faketime and shutil.which("faketime"):
            faketime_cmd = ["faketime", "-f", faketime]
            self.faketime_enabled = True
        self.proc = self.execute(
            [
                *faketime_cmd,
                _bin("twistd"),
                "--pidfile=",
                "-n",
                "chat",
                "--config",
                str(self.directory / "chat.toml"),
                "--listen",
                f"tcp:{port}:interface=127.0.0.1",
                "--server-name",
                "My.Little.Server",
                "--data-dir",
                str(data_dir),
            ],
            cwd=self.directory,
        )

    def wait_for_services(self) -> None:
        """NickServ is built in: it is up when the server is."""

    def registerUser(
        self,
        case: BaseServerTestCase,
        username: str,
        password: str | None = None,
    ) -> None:
        """Register *username* with NickServ from a short-lived connection.

        A password too long for one IRC line (irctest's 800-byte SASL test)
        is registered with ``python -m chat.admin`` instead.
        """
        if not case.run_services:
            raise ValueError("registerUser needs run_services = True")
        assert password
        if len(f"NS REGISTER {password}\r\n".encode()) > LINE_BYTES:
            assert self.directory
            config = str(self.directory / "chat.toml")
            command = [_bin("python"), "-m", "chat.admin", "--config", config]
            for _ in range(ADMIN_TRIES):
                created = subprocess.run(
                    [*command, "create", username],
                    input=password + "\n",
                    capture_output=True,
                    text=True,
                )
                if created.returncode == 0:
                    return
                # The server may hold the database just after it started.
                if "database is locked" not in created.stderr:
                    break
                time.sleep(0.2)
            raise AssertionError(f"chat.admin create failed: {created.stderr}")
        client = case.addClient(show_io=False)
        case.sendLine(client, "NICK " + username)
        case.sendLine(client, "USER r e g :user")
        while case.getRegistrationMessage(client).command != "001":
            pass
        case.getMessages(client)
        case.sendLine(client, "NS REGISTER " + password)
        # The answer comes once the password is hashed (on a thread).
        deadline = time.monotonic() + REGISTER_TIMEOUT
        while not any(
            msg.command == "NOTICE" and "registered" in msg.params[-1]
            for msg in case.getMessages(client)
        ):
            if time.monotonic() > deadline:
                raise AssertionError(f"NickServ did not register {username}")
        case.sendLine(client, "QUIT")
        case.assertDisconnected(client)


def get_irctest_controller_class() -> type[ChatController]:
    """irctest's entry point."""
    return ChatController
