"""Interop: the client's session against ngircd and InspIRCd from Debian.

Each test writes a minimal server configuration into a temporary directory,
runs the daemon in the foreground on a free loopback port, and has two
client sessions chat in a channel.  Needs the Debian packages ``ngircd``
and ``inspircd`` (CI installs them); without them the tests are skipped
with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import cast

from twisted.internet import reactor as _reactor
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.trial.unittest import SkipTest, TestCase

from chat.client import commands
from chat.client.config import ClientConfig
from chat.client.connection import Session
from chat.client.model import Kind
from tests.client_support import eventually, free_port, members, texts, until

reactor = cast(IReactorTime, _reactor)

NGIRCD_CONF = """\
[Global]
Name = ngircd.test
Info = interop test
Listen = 127.0.0.1
Ports = {port}
PidFile = {dir}/ngircd.pid
MotdPhrase = ngircd interop test
[Options]
PAM = no
Ident = no
DNS = no
"""

INSPIRCD_CONF = """\
<server name="insp.test" description="interop test" network="InspNet">
<admin name="Admin" nick="admin" email="admin@insp.test">
<bind address="127.0.0.1" port="{port}" type="clients">
<connect allow="*" timeout="60" pingfreq="120" sendq="262144" recvq="8192"
  threshold="50" commandrate="100000" localmax="10" globalmax="10"
  useident="no" limit="100">
<files motd="{dir}/motd">
<pid file="{dir}/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default"
  target="{dir}/ircd.log">
<module name="cap">
<module name="ircv3">
<module name="ircv3_servertime">
<module name="ircv3_echomessage">
<module name="ircv3_batch">
<module name="ircv3_capnotify">
<module name="ircv3_labeledresponse">
<module name="namesx">
"""


class InteropMixin:
    """Start a daemon, then two sessions that chat through it."""

    binary = ""
    network = ""

    def command(self, directory: Path, port: int) -> list[str]:
        raise NotImplementedError

    def start_daemon(self, case: TestCase) -> int:
        path = shutil.which(self.binary) or (
            f"/usr/sbin/{self.binary}"
            if Path(f"/usr/sbin/{self.binary}").exists()
            else None
        )
        if path is None:
            if os.environ.get("CI"):
                raise AssertionError(f"{self.binary} must be installed in CI")
            raise SkipTest(f"{self.binary} is not installed (Debian package)")
        directory = Path(case.mktemp()).resolve()
        directory.mkdir(parents=True)
        directory.chmod(0o777)
        port = free_port()
        process = subprocess.Popen(
            [path, *self.command(directory, port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def stop() -> None:
            process.terminate()
            process.wait(10)

        case.addCleanup(stop)
        return port

    def session(self, case: TestCase, port: int, nick: str) -> Session:
        config = ClientConfig(
            host="127.0.0.1", port=port, nick=nick, plain=True, join=("#interop",)
        )
        session = Session(config, reactor)
        session.start(HostnameEndpoint(cast(IReactorTCP, reactor), "127.0.0.1", port))
        case.addCleanup(session.quit)
        return session

    async def chat(self, case: TestCase) -> None:
        port = self.start_daemon(case)

        def listening() -> bool:
            import socket

            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        await eventually(listening, f"{self.binary} to listen")
        alice = self.session(case, port, "alice")
        await until(alice, lambda: bool(texts(alice, "#interop")))
        bob = self.session(case, port, "bob")
        await until(alice, lambda: "bob" in members(alice, "#interop"))
        case.assertEqual(alice.state.status.server, self.network)
        alice.say("#interop", "hello bob")
        await until(bob, lambda: "hello bob" in texts(bob, "#interop"))
        buffer = bob.state.find("#interop")
        assert buffer is not None
        case.assertTrue(
            next(x for x in buffer.lines if x.text == "hello bob").highlight
        )
        bob.say("#interop", "waves", Kind.ACTION)
        await until(alice, lambda: "waves" in texts(alice, "#interop"))
        await until(bob, lambda: "waves" in texts(bob, "#interop"))
        case.assertEqual(texts(bob, "#interop").count("waves"), 1)
        alice.send("MODE", "#interop", "+v", "bob")
        await until(
            bob,
            lambda: bob.state.find("#interop").members["bob"].prefixes == "+",  # type: ignore[union-attr]
        )

    async def list_where_typed(self, case: TestCase) -> None:
        """/list typed in the server buffer is answered there, not per channel."""
        port = self.start_daemon(case)
        await eventually(lambda: _listening(port), f"{self.binary} to listen")
        alice = self.session(case, port, "alice")
        await until(alice, lambda: bool(texts(alice, "#interop")))
        commands.run(alice, "/join #second")
        await until(alice, lambda: "You joined #second" in texts(alice, "#second"))
        alice.state.switch(0)
        commands.run(alice, "/list")
        await until(alice, lambda: "End of channel list" in texts(alice, "server"))
        listed = {t.split()[0] for t in texts(alice, "server") if " users  " in t}
        case.assertLessEqual({"#interop", "#second"}, listed)
        for name in ("#interop", "#second"):
            case.assertFalse(
                any(" users  " in t for t in texts(alice, name)), texts(alice, name)
            )

    async def rejoin_rebuilds(self, case: TestCase) -> None:
        """A topic cleared while away is not shown after the rejoin."""
        port = self.start_daemon(case)
        await eventually(lambda: _listening(port), f"{self.binary} to listen")
        alice = self.session(case, port, "alice")
        await until(alice, lambda: "alice" in members(alice, "#interop"))
        room = alice.state.find("#interop")
        assert room is not None
        alice.send("MODE", "#interop", "-t+s")
        alice.send("TOPIC", "#interop", "Old topic")
        await until(
            alice,
            lambda: (
                room.topic == "Old topic"
                and "t" not in room.modes
                and "s" in room.modes
            ),
        )
        bob = self.session(case, port, "bob")
        await until(alice, lambda: "bob" in members(alice, "#interop"))
        assert alice.service is not None
        await alice.service.stopService()
        await until(bob, lambda: "alice" not in members(bob, "#interop"))
        bob.send("TOPIC", "#interop", "")
        await until(
            bob, lambda: any("cleared the topic" in t for t in texts(bob, "#interop"))
        )
        alice.reconnect()
        await until(alice, lambda: room.joined and not room.modes_pending)
        await until(alice, lambda: members(alice, "#interop") == {"alice", "bob"})
        case.assertEqual(room.topic, "")
        case.assertIn("s", room.modes, "refilled from the 324 asked on rejoin")
        case.assertNotIn("t", room.modes)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class NgircdTests(InteropMixin, TestCase):
    binary = "ngircd"
    network = "ngircd.test"

    def command(self, directory: Path, port: int) -> list[str]:
        config = directory / "ngircd.conf"
        config.write_text(NGIRCD_CONF.format(port=port, dir=directory))
        return ["--nodaemon", "--config", str(config)]

    async def test_two_clients_chat(self) -> None:
        await self.chat(self)

    async def test_list_answer_in_the_typing_buffer(self) -> None:
        await self.list_where_typed(self)

    async def test_rejoin_rebuilds_the_topic(self) -> None:
        await self.rejoin_rebuilds(self)


class InspircdTests(InteropMixin, TestCase):
    binary = "inspircd"
    network = "InspNet"

    def command(self, directory: Path, port: int) -> list[str]:
        config = directory / "inspircd.conf"
        config.write_text(INSPIRCD_CONF.format(port=port, dir=directory))
        (directory / "motd").write_text("interop\n")
        return ["--config", str(config), "--nofork", "--runasroot"]

    async def test_two_clients_chat(self) -> None:
        await self.chat(self)
