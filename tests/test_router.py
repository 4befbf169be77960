"""The Router: audiences, turns, and one client's lines handled in order."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from chat.commands import COMMANDS, Command
from chat.message import Message
from chat.relay import Relay
from chat.router import Audience
from tests.ircv3_support import with_caps
from tests.support import Harness, hold_history


class AudienceTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob, self.carol = self.harness.channel_of(
            "alice", "bob", "carol"
        )
        self.dave = self.harness.register("dave")
        self.dave.send("JOIN #other")
        self.alice.send("JOIN #other")
        self.server = self.harness.server
        self.chan = self.server.channels["#chan"]
        self.other = self.server.channels["#other"]

    def nicks(self, audience: Audience) -> list[str]:
        return sorted(c.nick for c in self.server.router.recipients(audience))

    def test_a_channel_and_its_filters(self) -> None:
        self.assertEqual(
            self.nicks(Audience.channel(self.chan)), ["alice", "bob", "carol"]
        )
        self.assertEqual(
            self.nicks(Audience.channel(self.chan, skip=self.alice.conn)),
            ["bob", "carol"],
        )
        with_caps(self.bob, "away-notify")
        self.assertEqual(
            self.nicks(Audience.channel(self.chan, cap="away-notify")), ["bob"]
        )
        self.assertEqual(
            self.nicks(Audience.channel(self.chan, lacking="away-notify")),
            ["alice", "carol"],
        )

    def test_peers_are_counted_once_across_channels(self) -> None:
        peers = list(self.server.router.recipients(Audience.peers(self.alice.conn)))
        self.assertEqual(sorted(c.nick for c in peers), ["bob", "carol", "dave"])
        self.assertEqual(
            self.nicks(Audience.peers(self.alice.conn, include_self=True)),
            ["alice", "bob", "carol", "dave"],
        )

    def test_status_and_user_modes(self) -> None:
        # alice created #chan, so she holds +o there.
        self.assertEqual(self.nicks(Audience.channel(self.chan, status="o")), ["alice"])
        self.carol.send("MODE carol +w")
        self.assertEqual(self.nicks(Audience(user_modes="wo")), ["carol"])

    def test_one_write_per_recipient_per_turn(self) -> None:
        writes: list[bytes] = []
        self.bob.conn.transmit = writes.append  # type: ignore[method-assign]
        self.alice.send_raw(b"PRIVMSG #chan :one\r\nPRIVMSG #chan :two\r\n")
        self.assertEqual(len(writes), 1)
        self.assertEqual(writes[0].count(b"\r\n"), 2)

    def test_private_messages_join_the_turn(self) -> None:
        """`Router.deliver` (private messages) queues in the recipient's
        outbox like `publish`: one write with the channel line, in order."""
        writes: list[bytes] = []
        self.bob.conn.transmit = writes.append  # type: ignore[method-assign]
        self.alice.send_raw(b"PRIVMSG bob :one\r\nPRIVMSG #chan :two\r\n")
        self.assertEqual(len(writes), 1)
        self.assertEqual(
            writes[0],
            b":alice!~alice@127.0.0.1 PRIVMSG bob :one\r\n"
            b":alice!~alice@127.0.0.1 PRIVMSG #chan :two\r\n",
        )

    def publish_notice(self, audience: Audience) -> None:
        """`Router.publish` a NOTICE to *audience* in one turn."""
        router = self.server.router
        self.assertTrue(router.begin_turn())
        router.publish(
            Relay(Message("NOTICE", ("#chan", "hi"), "irc.test"), 0), audience
        )
        router.end_turn()

    def test_publish_leaves_out_the_skipped_with_and_without_filters(self) -> None:
        for client in (self.alice, self.bob, self.carol):
            client.raw()
        self.publish_notice(Audience.channel(self.chan, skip=self.alice.conn))
        self.assertEqual(
            [self.alice.lines(), self.bob.lines(), self.carol.lines()],
            [[], [":irc.test NOTICE #chan :hi"], [":irc.test NOTICE #chan :hi"]],
        )
        with_caps(self.bob, "away-notify")
        with_caps(self.alice, "away-notify")
        self.publish_notice(
            Audience.channel(self.chan, skip=self.alice.conn, cap="away-notify")
        )
        self.assertEqual(
            [self.alice.lines(), self.bob.lines(), self.carol.lines()],
            [[], [":irc.test NOTICE #chan :hi"], []],
        )

    def test_many_lines_to_one_member_in_a_turn_keep_their_order(self) -> None:
        """Each member gets its own lines, though members sent the same
        ones share one joined write."""
        writes: dict[str, list[bytes]] = {"bob": [], "carol": [], "dave": []}
        for client in (self.bob, self.carol, self.dave):
            client.conn.transmit = writes[client.conn.nick].append  # type: ignore[method-assign]
        self.dave.send("JOIN #chan")
        for sent in writes.values():
            sent.clear()
        self.alice.send_raw(
            b"PRIVMSG #chan :one\r\nPRIVMSG bob :two\r\nPRIVMSG #chan :three\r\n"
        )
        texts = {
            nick: [line.rsplit(b":", 1)[1] for line in b"".join(sent).splitlines()]
            for nick, sent in writes.items()
        }
        self.assertEqual(
            texts,
            {
                "bob": [b"one", b"two", b"three"],
                "carol": [b"one", b"three"],
                "dave": [b"one", b"three"],
            },
        )
        self.assertEqual([len(sent) for sent in writes.values()], [1, 1, 1])
        self.assertIs(writes["carol"][0], writes["dave"][0])


class HeldTurnTests(TestCase):
    """Turns after a held one join its output, in order."""

    def test_later_turns_queue_behind_a_held_one_in_order(self) -> None:
        harness = Harness()
        alice, bob = harness.channel_of("alice", "bob")
        pending = hold_history(harness)
        alice.send("PRIVMSG #chan :kept")
        bob.send("PING a")  # its one line joins bob's held line
        bob.send_raw(b"PING b\r\nPING c\r\n")  # two more join the list
        alice.send("PING d")  # alice had nothing held
        self.assertEqual((alice.lines(), bob.lines()), ([], []))
        pending[0].callback(None)
        self.assertEqual(
            bob.lines(),
            [
                ":alice!~alice@127.0.0.1 PRIVMSG #chan :kept",
                ":irc.test PONG irc.test a",
                ":irc.test PONG irc.test b",
                ":irc.test PONG irc.test c",
            ],
        )
        self.assertEqual(alice.lines(), [":irc.test PONG irc.test d"])


class InOrderTests(TestCase):
    """A command that answers later holds its client's next lines."""

    def setUp(self) -> None:
        self.harness = Harness()
        self.later: Deferred[None] = Deferred()

        def slow(conn, server, msg):  # type: ignore[no-untyped-def]
            response = conn.responder()

            def answer(_: None) -> None:
                response.send(Message("NOTICE", (conn.nick, "slow done"), server.name))
                response.finish()

            self.later.addCallback(answer)

        COMMANDS["SLOWTEST"] = Command(slow)
        self.addCleanup(COMMANDS.pop, "SLOWTEST")

    def test_ping_after_a_slow_command_is_answered_after_it(self) -> None:
        alice = self.harness.register("alice")
        alice.send("SLOWTEST", "PING token")
        self.assertEqual(alice.lines(), [])
        self.later.callback(None)
        self.assertEqual(
            alice.lines(),
            [":irc.test NOTICE alice :slow done", ":irc.test PONG irc.test token"],
        )

    def test_other_clients_do_not_wait(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("SLOWTEST")
        bob.send("PING mine", "PRIVMSG #chan :hi")
        self.assertEqual(bob.lines(), [":irc.test PONG irc.test mine"])
        self.assertEqual(alice.lines(), [":bob!~bob@127.0.0.1 PRIVMSG #chan :hi"])

    def test_lines_sent_while_waiting_all_run_once_it_is_done(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("SLOWTEST")
        alice.send("PRIVMSG #chan :first", "PRIVMSG #chan :second")
        self.assertEqual(bob.lines(), [])
        self.later.callback(None)
        self.assertEqual(
            bob.lines(),
            [
                ":alice!~alice@127.0.0.1 PRIVMSG #chan :first",
                ":alice!~alice@127.0.0.1 PRIVMSG #chan :second",
            ],
        )

    def test_oper_then_ping(self) -> None:
        """The failure irctest saw: OPER checks on a worker, PING overtook."""
        from chat.passwords import hash_password

        harness = Harness(operators={"op": hash_password("secret", n=16, r=1, p=1)})
        pending: list[Deferred[object]] = []

        def worker(work, *args):  # type: ignore[no-untyped-def]
            d: Deferred[object] = Deferred()
            pending.append(d)
            return d.addCallback(lambda _: work(*args))

        harness.server.accounts.worker = worker
        alice = harness.register("alice")
        alice.send("OPER op secret", "PING after")
        self.assertEqual(alice.lines(), [])
        pending[0].callback(None)
        self.assertEqual(
            [m.command for m in alice.messages()][-1:], ["PONG"], "PONG comes last"
        )
        self.assertIn("o", alice.conn.modes)


class LabeledSelfMessageTests(TestCase):
    def test_only_the_echo_carries_the_label(self) -> None:
        harness = Harness()
        alice = with_caps(
            harness.register("alice"), "echo-message", "labeled-response", "batch"
        )
        alice.send("@label=me PRIVMSG alice :to myself")
        lines = alice.lines()
        self.assertEqual(
            lines,
            [
                ":alice!~alice@127.0.0.1 PRIVMSG alice :to myself",
                "@label=me :alice!~alice@127.0.0.1 PRIVMSG alice :to myself",
            ],
        )
