"""irssi, WeeChat and the project's client at once on three cluster nodes.

Three node processes over TLS share a Redis and a PostgreSQL database
(`tests.cluster_support`).  The project's client (in tmux) is on node
a, WeeChat (``weechat-headless``, driven through its FIFO) on node b and
irssi (in tmux) on node c.  They join one channel, each says a line and
asks for NAMES, private messages cross nodes, and WeeChat logs in with
SASL PLAIN to the account the project's client registered on node a.
What each client saw is read from its own conversation logs.

Needs the Debian packages ``irssi``, ``weechat-headless`` and ``tmux``
(`.ci/run` installs them): missing ones skip the test on a laptop and fail
it in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest

from tests import test_client_tmux as tmux_tests
from tests.accounts_support import PASSWORD
from tests.client_support import TIMEOUT, eventually
from tests.cluster_support import ClusterProcessCase
from tests.e2e_support import LineClient, is_command, reactor
from tests.redis_support import start_redis
from tests.services_support import postgres_database

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "#net"
#: Seconds before a client is asked again (`shown_after`).
ASK_AGAIN = 4.0


def need(program: str, package: str) -> str:
    """The path of *program*; skip (fail in CI) when it is not installed."""
    found = shutil.which(program)
    if found is None:
        reason = f"{program} is not installed (Debian package {package})"
        if os.environ.get("CI"):
            raise AssertionError(f"{reason}: CI must not skip, see .ci/run")
        raise SkipTest(reason)
    return found


def read(path: Path) -> str:
    """The text of a log file, or nothing while it does not exist."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def has_line(text: str, *words: str) -> bool:
    """Whether one line of *text* contains every one of *words*."""
    return any(all(word in line for word in words) for line in text.splitlines())


async def until(
    ask: Callable[[], Awaitable[object]], wanted: object, what: str
) -> None:
    """Ask again every 0.1 s until the answer is *wanted*."""
    answer = None
    for _ in range(int(TIMEOUT * 10)):
        answer = await ask()
        if answer == wanted:
            return
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError(f"timed out waiting for {what}: {answer!r}")


async def shown_after(
    ask: Callable[[], None], shown: Callable[[], bool], what: str
) -> None:
    """Ask (type a command into a client) until *shown*, again every
    `ASK_AGAIN` s: a keystroke a loaded terminal dropped is typed again."""
    waited = 0.0
    while waited <= TIMEOUT:
        ask()
        for _ in range(int(ASK_AGAIN * 10)):
            if shown():
                return
            await deferLater(reactor, 0.1, lambda: None)
        waited += ASK_AGAIN
    raise AssertionError(f"timed out waiting for {what}")


IRSSI_CONFIG = """
servers = (
  {{
    address = "localhost";
    chatnet = "test";
    port = "{port}";
    use_tls = "yes";
    tls_verify = "yes";
    tls_cafile = "{ca}";
    autoconnect = "yes";
  }}
);
chatnets = {{ test = {{ type = "IRC"; }}; }};
channels = ( {{ name = "{channel}"; chatnet = "test"; autojoin = "yes"; }} );
settings = {{
  core = {{ real_name = "irssi user"; user_name = "irs"; nick = "irs"; }};
  "fe-common/core" = {{
    autolog = "yes";
    autolog_path = "{logs}/$tag/$0.log";
    autolog_level = "all";
  }};
}};
"""

CLIENT_CONFIG = """
[logs]
enabled = true
"""


class ThreeClientsOnThreeNodesTests(ClusterProcessCase):
    timeout = 120

    def setUp(self) -> None:
        super().setUp()
        self.tmux_path = need("tmux", "tmux")
        self.irssi = need("irssi", "irssi")
        self.weechat = need("weechat-headless", "weechat-headless")
        self.work = Path(self.mktemp()).resolve()
        self.work.mkdir(parents=True)

    def tmux(self, name: str, command: str) -> tmux_tests.Tmux:
        """A private tmux server running *command* in a 120x30 window."""
        tmux = tmux_tests.Tmux(f"chat-cluster-{name}-{os.getpid()}")
        self.addCleanup(tmux.kill)
        tmux.run(
            "new-session", "-d", "-s", "main", "-x", "120", "-y", "30",
            "-c", str(self.work), command,
        )  # fmt: skip
        return tmux

    def project_client(self, port: int) -> tuple[tmux_tests.Tmux, Path]:
        """The project's client as alice; its logs directory."""
        config = self.work / "client.toml"
        config.write_text(CLIENT_CONFIG)
        state = self.work / "client-state"
        command = " ".join(
            [
                "LANG=C.UTF-8",
                f"PYTHONPATH={ROOT}",
                f"XDG_CONFIG_HOME={self.work / 'client-config'}",
                f"XDG_STATE_HOME={state}",
                sys.executable,
                "-m",
                "chat.client",
                f"--config {config}",
                "--host localhost",
                f"--port {port}",
                "--nick alice",
                f"--ca {self.certs / 'ca.pem'}",
                f"--join '{CHANNEL}'",
            ]
        )
        return self.tmux("client", command), state / "chat-client/logs/localhost"

    def irssi_client(self, port: int) -> tuple[tmux_tests.Tmux, Path]:
        """irssi as irs, from a config of its own; its logs directory."""
        home = self.work / "irssi"
        home.mkdir()
        logs = home / "logs"
        (home / "config").write_text(
            IRSSI_CONFIG.format(
                port=port, ca=self.certs / "ca.pem", channel=CHANNEL, logs=logs
            )
        )
        command = f"HOME={home} LANG=C.UTF-8 {self.irssi} --home={home}"
        return self.tmux("irssi", command), logs / "test"

    def weechat_client(self, port: int) -> tuple[Path, Path]:
        """weechat-headless as wee, logging in as alice; its FIFO and logs."""
        home = self.work / "weechat"
        home.mkdir()
        fifo = home / "fifo"
        commands = ";".join(
            [
                "/set logger.file.flush_delay 0",
                f"/set fifo.file.path {fifo}",
                "/set fifo.file.enabled on",
                f"/server add test 127.0.0.1/{port} -ssl -ssl_verify=off"
                " -sasl_mechanism=plain -sasl_username=alice"
                f" -sasl_password={PASSWORD} -nicks=wee -autojoin={CHANNEL}",
                "/connect test",
            ]
        )
        process = subprocess.Popen(
            [
                self.weechat,
                "--dir",
                str(home),
                "--no-script",
                "--run-command",
                commands,
            ],
            env={"HOME": str(home), "TERM": "dumb", "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(process.wait)
        self.addCleanup(process.kill)
        return fifo, home / "logs"

    async def names(self, watcher: LineClient) -> set[str]:
        """The members of CHANNEL, as NAMES tells the watcher."""
        watcher.take(is_command("353"))
        watcher.send("NAMES", CHANNEL)
        await watcher.wait_for(is_command("366"))
        return {
            nick.lstrip("@+")
            for reply in watcher.take(is_command("353"))
            for nick in reply.params[-1].split()
        }

    async def account_of(self, watcher: LineClient, nick: str) -> str | None:
        """The account WHOIS shows for *nick*, if any."""
        watcher.take(is_command("330"))
        watcher.send("WHOIS", nick)
        await watcher.wait_for(is_command("318"))
        found = watcher.take(is_command("330"))
        return found[0].params[2] if found else None

    async def test_irssi_weechat_and_the_project_client_on_three_nodes(
        self,
    ) -> None:
        self.redis = start_redis(self)
        self.database = postgres_database()
        self.certs = self.work / "certs"
        _, port_a = await self.node("a")
        _, port_b = await self.node("b")
        _, port_c = await self.node("c")
        watcher = await self.user(port_c, "watcher")

        # The project's client on a registers the account WeeChat uses.
        client, client_logs = self.project_client(port_a)
        await eventually(lambda: f"You joined {CHANNEL}" in client.screen(), "join")
        client.type(f"/quote REGISTER * * {PASSWORD}")
        # The watcher is a member: NAMES shows invisible members (irssi
        # sets +i) only to members.
        watcher.send("JOIN", CHANNEL)
        await watcher.wait_for(is_command("366"))

        await until(
            lambda: self.account_of(watcher, "alice"), "alice", "the registration"
        )

        fifo, weechat_logs = self.weechat_client(port_b)
        irssi, irssi_logs = self.irssi_client(port_c)
        everyone = {"alice", "watcher", "wee", "irs"}
        await until(lambda: self.names(watcher), everyone, "everyone to join")
        await eventually(fifo.exists, "WeeChat's FIFO")
        self.assertEqual(await self.account_of(watcher, "wee"), "alice")

        # Each says a line in the channel, then shows NAMES.
        client.type("hello from the project client")
        self.weechat_command(fifo, f"irc.test.{CHANNEL}", "hello from weechat")
        irssi.type(f"/msg {CHANNEL} hello from irssi")
        ask_names = {
            "the project's client": lambda: client.type("/names"),
            "WeeChat": lambda: self.weechat_command(
                fifo, f"irc.test.{CHANNEL}", "/names"
            ),
            "irssi": lambda: irssi.type(f"/names {CHANNEL}"),
        }

        client_channel = client_logs / f"{CHANNEL}.log"
        weechat_channel = weechat_logs / f"irc.test.{CHANNEL}.weechatlog"
        irssi_channel = irssi_logs / f"{CHANNEL}.log"
        seen = {
            "the project's client": (client_channel, ("wee", "irs")),
            "WeeChat": (weechat_channel, ("alice", "irs")),
            "irssi": (irssi_channel, ("alice", "wee")),
        }
        said = {
            "alice": "hello from the project client",
            "wee": "hello from weechat",
            "irs": "hello from irssi",
        }
        for who, (path, others) in seen.items():
            for other in others:
                await eventually(
                    lambda p=path, o=other: has_line(read(p), o, said[o]),
                    f"{who} to see {other}'s line",
                )
            await shown_after(
                ask_names[who],
                lambda p=path: has_line(read(p), "alice", "wee", "irs"),
                f"{who} to show NAMES with everyone",
            )

        # Private messages cross nodes: c to a, a to b.
        irssi.type("/msg alice psst from irssi")
        await eventually(
            lambda: has_line(read(client_logs / "irs.log"), "psst from irssi"),
            "irssi's private message",
        )
        client.type("/msg wee just for weechat")
        await eventually(
            lambda: has_line(
                read(weechat_logs / "irc.test.alice.weechatlog"), "just for weechat"
            ),
            "the private message to WeeChat",
        )

    def weechat_command(self, fifo: Path, buffer: str, text: str) -> None:
        """Have WeeChat run *text* in *buffer*, through its FIFO."""
        descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(descriptor, f"{buffer} *{text}\n".encode())
        finally:
            os.close(descriptor)
