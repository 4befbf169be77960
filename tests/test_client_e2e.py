"""The client talking to the project's server over loopback TLS."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.trial.unittest import TestCase

from chat.client import commands
from chat.client.config import ClientConfig
from chat.client.connection import Session
from chat.client.model import Buffer, Kind
from chat.client.networks import Networks, tcp_connector
from chat.client.notify import Notifier
from chat.client.security import client_security
from chat.client.ui import ChatUI
from chat.config import ServerConfig
from tests.client_support import TIMEOUT, members, screen_runs, texts, until
from tests.e2e_support import RunningServer, start_server

reactor = cast(IReactorTime, _reactor)


def render(ui: ChatUI) -> list[str]:
    return [row.decode("utf-8") for row in ui.render((80, 14), focus=True).text]


def client_certificate_pem(name: str) -> bytes:
    """A self-signed client certificate and its key, in one PEM file."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class ClientAgainstServerTests(TestCase):
    def setUp(self) -> None:
        self.server: RunningServer = start_server(self)

    def connect(
        self, nick: str, verify_as: str = "localhost", **settings: object
    ) -> Session:
        """A client session for *nick*, verifying the server as *verify_as*."""
        settings.setdefault("ca", self.server.ca_file)
        settings.setdefault("dev_ca", Path("no-such-dir/ca.pem"))
        settings.setdefault("state_dir", Path(self.mktemp()))
        port = self.server.next_tls_port()
        config = ClientConfig(
            host=verify_as,
            port=port,
            nick=nick,
            **settings,  # type: ignore[arg-type]
        )
        security = client_security(config)
        session = Session(config, reactor)
        endpoint = HostnameEndpoint(cast(IReactorTCP, reactor), "127.0.0.1", port)
        session.start(wrapClientTLS(security.options, endpoint))  # type: ignore[arg-type]
        self.addCleanup(session.quit)
        return session

    async def test_two_people_chat_in_a_channel(self) -> None:
        alice = self.connect("alice", join=("#room",))
        await until(
            alice,
            lambda: bool(
                alice.state.find("#room") and alice.state.find("#room").joined
            ),
        )  # type: ignore[union-attr]
        bob = self.connect("bob", join=("#room",))
        await until(alice, lambda: "bob" in members(alice, "#room"))
        await until(bob, lambda: members(bob, "#room") == {"alice", "bob"})
        room = bob.state.find("#room")
        assert room is not None
        self.assertEqual(
            [m.prefixes + m.nick for m in room.sorted_members(bob.state.prefix_chars)],
            ["@alice", "bob"],
        )
        self.assertEqual(bob.state.current.name, "#room")
        alice.say("#room", "hello bob, how are you?")
        await until(bob, lambda: "hello bob, how are you?" in texts(bob, "#room"))
        await until(alice, lambda: "hello bob, how are you?" in texts(alice, "#room"))
        line = next(x for x in room.lines if x.text == "hello bob, how are you?")
        self.assertEqual((line.nick, line.kind), ("alice", Kind.MESSAGE))
        self.assertTrue(line.highlight)
        self.assertEqual(texts(alice, "#room").count("hello bob, how are you?"), 1)
        bob.say("#room", "fine", Kind.ACTION)
        await until(alice, lambda: "fine" in texts(alice, "#room"))
        await until(bob, lambda: "fine" in texts(bob, "#room"))
        self.assertEqual(alice.state.find("#room").lines[-1].kind, Kind.ACTION)  # type: ignore[union-attr]
        bob.say("alice", "a secret")
        await until(alice, lambda: "a secret" in texts(alice, "bob"))
        bob.part(room, "bye now")
        await until(alice, lambda: "bob left (bye now)" in texts(alice, "#room"))
        self.assertNotIn("bob", members(alice, "#room"))

    async def test_history_is_loaded_on_join(self) -> None:
        alice = self.connect("alice", join=("#hist",))
        await until(
            alice,
            lambda: bool(
                alice.state.find("#hist") and alice.state.find("#hist").joined
            ),
        )  # type: ignore[union-attr]
        for number in range(3):
            alice.say("#hist", f"earlier message {number}")
        await until(alice, lambda: "earlier message 2" in texts(alice, "#hist"))
        bob = self.connect("bob", join=("#hist",))
        await until(bob, lambda: "earlier message 2" in texts(bob, "#hist"))
        buffer = bob.state.find("#hist")
        assert buffer is not None
        old = [line for line in buffer.lines if line.text.startswith("earlier")]
        self.assertEqual(len(old), 3)
        self.assertTrue(all(line.history and line.nick == "alice" for line in old))

    async def test_typed_commands_and_replies_in_the_asking_buffer(self) -> None:
        alice = self.connect("alice")
        await until(alice, lambda: alice.connected)
        commands.run(alice, "/join #extra")
        await until(alice, lambda: alice.state.current.name == "#extra")
        commands.run(alice, "/whois alice")
        await until(
            alice, lambda: any("alice is ~alice@" in t for t in texts(alice, "#extra"))
        )
        commands.run(alice, "/topic Typed topic")
        await until(alice, lambda: alice.state.current.topic == "Typed topic")
        commands.run(alice, "/part #nowhere")
        await until(
            alice,
            lambda: any(line.kind == Kind.ERROR for line in alice.state.current.lines),
        )

    async def test_sasl_plain_login_and_failure(self) -> None:
        first = self.connect("alice")
        await until(first, lambda: first.connected)
        first.send("REGISTER", "alice", "*", "correct horse battery staple")
        await until(
            first, lambda: first.protocol is not None and first.protocol.logged_in
        )
        await first.quit()
        good = self.connect(
            "alice",
            sasl_user="alice",
            sasl_password="correct horse battery staple",
            join=("#members",),
        )
        await until(good, lambda: "alice" in members(good, "#members"))
        self.assertTrue(good.protocol and good.protocol.logged_in)
        self.assertIn("Logged in as alice", texts(good, "server"))
        bad = self.connect(
            "mallory",
            sasl_user="alice",
            sasl_password="wrong guess",
            join=("#members",),
        )
        await until(bad, lambda: bad.state.status.state == "stopped")
        self.assertIsNone(bad.state.find("#members"))
        self.assertTrue(
            any("SASL login as alice failed" in t for t in texts(bad, "server")),
            texts(bad, "server"),
        )

    async def test_sasl_external_with_a_client_certificate(self) -> None:
        cert = Path(self.mktemp())
        cert.write_bytes(client_certificate_pem("alice"))
        first = self.connect("alice")
        await until(first, lambda: first.connected)
        first.send("REGISTER", "alice", "*", "correct horse battery staple")
        await until(
            first, lambda: first.protocol is not None and first.protocol.logged_in
        )
        await first.quit()
        second = self.connect(
            "alice",
            cert=cert,
            sasl_user="alice",
            sasl_password="correct horse battery staple",
        )
        await until(second, lambda: second.connected)
        second.send("NS", "CERT", "ADD")
        await until(second, lambda: any("Added" in t for t in texts(second, "server")))
        await second.quit()
        third = self.connect("alice", cert=cert, join=("#certs",))
        await until(third, lambda: "alice" in members(third, "#certs"))
        self.assertTrue(third.protocol and third.protocol.logged_in)
        self.assertIn("Logged in as alice", texts(third, "server"))

    async def test_status_shows_connection_and_lag(self) -> None:
        alice = self.connect("alice")
        await until(alice, lambda: alice.state.status.lag is not None)
        self.assertEqual(alice.state.status.state, "connected")
        self.assertEqual(alice.state.status.server, "TestNet")

    async def test_nick_in_use_picks_another(self) -> None:
        first = self.connect("carol")
        await until(first, lambda: first.connected)
        second = self.connect("carol")
        await until(second, lambda: second.connected)
        self.assertEqual(second.state.nick, "carol_")

    async def test_development_ca_is_trusted_on_localhost(self) -> None:
        config = ClientConfig(host="localhost", dev_ca=self.server.ca_file)
        security = client_security(config)
        self.assertEqual(
            security.summary, f"TLS verified (dev CA {self.server.ca_file})"
        )
        session = self.connect("frank", ca=None, dev_ca=self.server.ca_file)
        await until(session, lambda: session.connected)

    async def test_untrusted_certificate_is_explained(self) -> None:
        session = self.connect("dave", ca=None)
        await until(session, lambda: session.state.status.state == "stopped")
        errors = [
            line.text
            for line in session.state.server_buffer.lines
            if line.kind == Kind.ERROR
        ]
        self.assertTrue(
            any(
                "it is signed by 'chat-server development CA', "
                "a CA this client does not trust" in e
                for e in errors
            ),
            errors,
        )
        self.assertFalse(any("Traceback" in e for e in errors))

    async def test_insecure_connects_without_checking(self) -> None:
        session = self.connect("gina", ca=None, insecure=True, verify_as="127.0.0.1")
        await until(session, lambda: session.connected)
        security = client_security(session.config)
        self.assertEqual(security.summary, "TLS UNVERIFIED (--insecure)")
        runs = screen_runs(ChatUI(session))
        self.assertIn(("status.danger", " TLS UNVERIFIED (--insecure) "), runs[0])
        self.assertIn(("status.danger", " TLS UNVERIFIED (--insecure) "), runs[-2])

    async def test_verified_shown_only_after_the_handshake_proved_it(self) -> None:
        session = self.connect("ivy")
        ui = ChatUI(session)
        self.assertNotIn("verified", "".join(t for _, t in screen_runs(ui)[-2]))
        await until(session, lambda: session.connected)
        runs = screen_runs(ui)
        self.assertIn(("status.secure", "[TLS verified]"), runs[-2])
        server = "".join(text for _, text in runs[0])
        self.assertIn(f"TLS verified (CA {self.server.ca_file.name})", server)
        self.assertFalse(any(a == "status.danger" for row in runs for a, _ in row))

    async def test_failed_verification_is_not_shown_as_verified(self) -> None:
        session = self.connect("jack", ca=None)
        ui = ChatUI(session)
        await until(session, lambda: session.state.status.state == "stopped")
        runs = screen_runs(ui)
        alarm = ("status.danger", " TLS UNVERIFIED: certificate rejected ")
        self.assertIn(alarm, runs[0])
        self.assertIn(alarm, runs[-2])
        shown = "\n".join("".join(text for _, text in row) for row in runs)
        self.assertNotIn("TLS verified", shown)
        self.assertIn("could not be verified", shown)

    async def test_reconnect_tries_again_after_giving_up(self) -> None:
        session = self.connect("hank", ca=None)

        def failures() -> int:
            lines = texts(session, "server")
            return sum(1 for t in lines if t.startswith("Could not verify"))

        await until(session, lambda: failures() == 1)
        self.assertEqual(session.state.status.state, "stopped")
        commands.run(session, "/reconnect")
        await until(session, lambda: failures() == 2)
        self.assertEqual(session.state.status.state, "stopped")

    async def test_wrong_name_is_explained(self) -> None:
        session = self.connect("erin", verify_as="chat.example.org")
        await until(session, lambda: session.state.status.state == "stopped")
        errors = [line.text for line in session.state.server_buffer.lines]
        self.assertTrue(
            any("not valid for the name 'chat.example.org'" in e for e in errors),
            errors,
        )

    async def test_rejoin_rebuilds_topic_modes_and_nicks(self) -> None:
        alice = self.connect("alice", join=("#room",))
        ui = ChatUI(alice)
        room = await self.joined(alice, "#room")
        alice.send("MODE", "#room", "-t")
        alice.send("TOPIC", "#room", "Old topic")
        await until(alice, lambda: room.topic == "Old topic" and "t" not in room.modes)
        self.assertIn("n", room.modes)
        bob = self.connect("bob", join=("#room",))
        await until(alice, lambda: "bob" in members(alice, "#room"))
        assert alice.service is not None
        await alice.service.stopService()
        await until(bob, lambda: "alice" not in members(bob, "#room"))
        bob.send("TOPIC", "#room", "")
        bob_room = await self.joined(bob, "#room")
        await until(bob, lambda: any("cleared" in t for t in texts(bob, "#room")))
        self.assertEqual(bob_room.topic, "")
        await bob.quit()
        alice.reconnect()
        await until(alice, lambda: room.joined and not room.modes_pending)
        await until(alice, lambda: members(alice, "#room") == {"alice"})
        self.assertEqual(room.topic, "")
        self.assertIn("n", room.modes)
        header = "".join(text for _, text in screen_runs(ui)[0])
        self.assertTrue(header.startswith("#room (+"), header)
        self.assertNotIn("Old topic", header)
        commands.run(alice, "/topic")
        await until(alice, lambda: "No topic is set for #room" in texts(alice, "#room"))
        self.assertEqual(room.topic, "")

    async def joined(self, session: Session, name: str) -> Buffer:
        """Wait until *session* is in channel *name*; its buffer."""

        def inside() -> bool:
            buffer = session.state.find(name)
            return buffer is not None and buffer.joined

        await until(session, inside)
        buffer = session.state.find(name)
        assert buffer is not None
        return buffer

    async def test_ctcp_ignore_and_operator_commands(self) -> None:
        alice = self.connect("alice", join=("#ops",), state_dir=Path(self.mktemp()))
        room = await self.joined(alice, "#ops")
        bob = self.connect("bob", join=("#ops",), state_dir=Path(self.mktemp()))
        await self.joined(bob, "#ops")
        await until(alice, lambda: "bob" in members(alice, "#ops"))
        commands.run(alice, "/ctcp bob VERSION")
        await until(
            alice,
            lambda: any(
                "CTCP VERSION reply from bob: chat-server" in t
                for t in texts(alice, "#ops")
            ),
        )
        commands.run(alice, "/op bob")
        await until(alice, lambda: room.members["bob"].prefixes == "@")
        commands.run(alice, "/deop bob")
        commands.run(alice, "/voice bob")
        await until(alice, lambda: room.members["bob"].prefixes == "+")
        commands.run(alice, "/ignore bob")
        bob.say("#ops", "you cannot see this")
        bob.say("alice", "nor this")
        await until(bob, lambda: "nor this" in texts(bob, "alice"))
        # Alice's next reply comes after whatever the server relayed before it.
        commands.run(alice, "/whois bob")
        await until(
            alice,
            lambda: any(t.startswith("bob is ~bob@") for t in texts(alice, "#ops")),
        )
        self.assertNotIn("you cannot see this", texts(alice, "#ops"))
        commands.run(alice, "/search anything")
        await until(alice, lambda: "Search: 0 results" in texts(alice, "#ops"))
        commands.run(alice, "/search cannot")
        await until(alice, lambda: "Search: 1 result" in texts(alice, "#ops"))
        commands.run(alice, "/unignore bob")
        bob.say("#ops", "now you do")
        await until(alice, lambda: "now you do" in texts(alice, "#ops"))
        self.assertNotIn("you cannot see this", texts(alice, "#ops"))
        self.assertIsNone(alice.state.find("bob"))
        commands.run(alice, "/kickban bob enough")
        bob_room = bob.state.find("#ops")
        assert bob_room is not None
        await until(bob, lambda: not bob_room.joined)
        await until(alice, lambda: "bob" not in members(alice, "#ops"))
        self.assertIn("alice kicked you (enough)", texts(bob, "#ops"))
        bob.join("#ops")
        await until(
            bob,
            lambda: any(line.kind == Kind.ERROR for line in bob.state.current.lines),
        )
        self.assertFalse(bob_room.joined)

    async def test_bell_and_notification_on_highlight_and_private_message(
        self,
    ) -> None:
        alice = self.connect("alice", join=("#bells",), highlights=("deploy",))
        written: list[str] = []
        spawned: list[list[str]] = []
        alice.state.line_listeners.append(
            Notifier(True, "osc777", written.append, spawned.append)
        )
        await self.joined(alice, "#bells")
        bob = self.connect("bob", join=("#bells",))
        await self.joined(bob, "#bells")
        bob.say("#bells", "just chatting")
        bob.say("#bells", "alice: lunch?")
        await until(alice, lambda: "alice: lunch?" in texts(alice, "#bells"))
        self.assertEqual(
            written, ["\a", "\x1b]777;notify;bob in #bells;alice: lunch?\x07"]
        )
        written.clear()
        bob.say("#bells", "the Deploy is done")
        await until(alice, lambda: "the Deploy is done" in texts(alice, "#bells"))
        room = alice.state.find("#bells")
        assert room is not None
        self.assertTrue(room.lines[-1].highlight)
        self.assertEqual(written[0], "\a")
        written.clear()
        bob.say("alice", "psst\x1b]0;evil\x07")
        await until(alice, lambda: bool(texts(alice, "bob")))
        self.assertEqual(
            written, ["\a", "\x1b]777;notify;bob (private);psst]0;evil\x07"]
        )
        alice.say("#bells", "deploy again, alice")
        await until(alice, lambda: "deploy again, alice" in texts(alice, "#bells"))
        self.assertEqual(len(written), 2, "own lines do not ring")
        self.assertEqual(spawned, [])

    async def test_conversation_logs_rotate_and_hide_passwords(self) -> None:
        state_dir = Path(self.mktemp())
        alice = self.connect(
            "alice",
            join=("#Logged",),
            state_dir=state_dir,
            logs_enabled=True,
            logs_max_bytes=400,
            logs_keep=2,
        )
        await self.joined(alice, "#Logged")
        bob = self.connect("bob", join=("#logged",), state_dir=Path(self.mktemp()))
        await self.joined(bob, "#logged")
        for number in range(20):
            bob.say("#logged", f"line {number:02} of a longer conversation")
        last = "line 19 of a longer conversation"
        await until(alice, lambda: last in texts(alice, "#Logged"))
        alice.say("NickServ", "IDENTIFY alice hunter2-secret")
        await until(alice, lambda: bool(texts(alice, "NickServ")))
        directory = state_dir / "logs" / "localhost"
        names = {p.name for p in directory.iterdir()}
        self.assertLessEqual(
            {"#logged.log", "#logged.log.1", "#logged.log.2", "nickserv.log"}, names
        )
        self.assertIn("-server.log", names)
        self.assertNotIn("#logged.log.3", names)
        newest = (directory / "#logged.log").read_text()
        self.assertRegex(newest, r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d <bob> line 19 of a")
        kept = [
            (directory / name).read_text()
            for name in ("#logged.log.2", "#logged.log.1", "#logged.log")
        ]
        self.assertNotIn("line 00", "".join(kept))
        self.assertTrue(all(len(text) < 500 for text in kept))
        everything = "".join(p.read_text() for p in directory.iterdir())
        self.assertNotIn("hunter2", everything)
        mode = (directory / "#logged.log").stat().st_mode & 0o777
        self.assertEqual(mode, 0o600)
        self.assertFalse((bob.config.state_dir / "logs").exists(), "off by default")

    async def test_two_networks_in_one_client(self) -> None:
        other = start_server(
            self,
            config=ServerConfig(server_name="irc.other", network="OtherNet"),
            cert_dir=self.server.ca_file.parent,
        )
        networks = Networks(reactor, tcp_connector(cast(IReactorTCP, reactor)))
        quitted: Deferred[None] = Deferred()
        networks.on_quit = lambda: quitted.callback(None)
        first = networks.open(
            ClientConfig(
                host="localhost",
                port=self.server.tls_port,
                nick="alice",
                ca=self.server.ca_file,
                join=("#here",),
            )
        )
        assert first is not None
        self.addCleanup(first.quit)
        ui = ChatUI(networks)
        await self.joined(first, "#here")
        commands.run(first, f"/connect localhost {other.tls_port}")
        self.assertEqual(len(networks.sessions), 2)
        second = networks.sessions[1]
        self.addCleanup(second.quit)
        self.assertIs(networks.current_session, second)
        await until(second, lambda: second.state.status.server == "OtherNet")
        commands.run(second, "/join #there")
        await until(second, lambda: second.state.current.name == "#there")
        left = [row[:16].rstrip() for row in render(ui)[1:6]]
        self.assertEqual(
            left, [" 1 TestNet", " 2  #here", " 3 OtherNet", " 4> #there", ""]
        )
        ui.keypress((80, 14), "meta 2")
        self.assertIs(networks.current_session, first)
        self.assertEqual(first.state.current.name, "#here")
        ui.submit("hello network one")
        await until(first, lambda: "hello network one" in texts(first, "#here"))
        self.assertNotIn("hello network one", texts(second, "#there"))
        self.assertIn("[2:#here]", render(ui)[-2])
        commands.run(first, "/server")
        listed = texts(first, "#here")[-2:]
        self.assertTrue(listed[0].startswith("1: TestNet (localhost:"), listed)
        self.assertTrue(listed[1].startswith("2: OtherNet (localhost:"), listed)
        ui.keypress((80, 14), "meta 4")
        commands.run(second, "/disconnect see you")
        self.assertEqual(networks.sessions, [first])
        self.assertIn(" 1 server", render(ui)[1])
        commands.run(first, f"/server localhost {other.tls_port}")
        moved = networks.current_session
        self.addCleanup(moved.quit)
        self.assertEqual(networks.sessions, [moved])
        await until(moved, lambda: moved.state.status.server == "OtherNet")
        await self.joined(moved, "#here")
        commands.run(moved, "/quit")
        await quitted.addTimeout(TIMEOUT, reactor)
        self.assertEqual(moved.state.status.state, "disconnected")
