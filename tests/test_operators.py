"""Tests for OPER, KILL and WALLOPS."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import capturedLogs
from twisted.trial.unittest import TestCase

from chat import numerics
from chat.passwords import hash_password
from tests.accounts_support import inline
from tests.support import FakeClient, Harness
from tests.test_queries import count_serializations

#: A cheap scrypt cost for tests; the format is the production one.
OPERATORS = {"admin": hash_password("s3cret", n=2**10)}


def make_operator(client: FakeClient) -> FakeClient:
    client.conn.modes.add("o")
    return client


class OperTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness(operators=OPERATORS)
        self.harness.server.accounts.worker = inline
        self.alice = self.harness.register("alice")

    def test_password_is_checked_off_the_reactor_thread(self) -> None:
        threads: list[bool] = []

        def worker(work: Callable[..., bool], *args: str) -> Deferred[bool]:
            threads.append(True)
            return succeed(work(*args))

        self.harness.server.accounts.worker = worker
        self.alice.send("OPER admin s3cret")
        self.assertEqual(threads, [True])
        self.assertEqual(self.alice.commands(), ["381", "MODE"])

    def test_answer_waits_for_the_check(self) -> None:
        pending: Deferred[bool] = Deferred()
        self.harness.server.accounts.worker = lambda *_: pending
        self.alice.send("OPER admin s3cret")
        self.assertEqual(self.alice.lines(), [])
        pending.callback(True)
        self.assertEqual(self.alice.commands(), ["381", "MODE"])

    def test_labeled_answer_after_the_check(self) -> None:
        pending: Deferred[bool] = Deferred()
        self.harness.server.accounts.worker = lambda *_: pending
        self.alice.send("CAP REQ :labeled-response batch")
        self.alice.raw()
        self.alice.send("@label=op1 OPER admin wrong")
        self.assertEqual(self.alice.lines(), [])
        pending.callback(False)
        self.assertEqual(
            self.alice.lines(), ["@label=op1 :irc.test 464 alice :Password incorrect"]
        )

    def test_success(self) -> None:
        self.alice.send("OPER admin s3cret")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 381 alice :You are now an IRC operator",
                ":alice MODE alice :+o",
            ],
        )
        self.assertIn("o", self.alice.conn.modes)
        self.assertEqual(self.harness.server.operators_online(), 1)

    def test_again_sends_no_mode(self) -> None:
        self.alice.send("OPER admin s3cret", "OPER admin s3cret")
        self.assertEqual(self.alice.commands(), ["381", "MODE", "381"])

    def test_wrong_password(self) -> None:
        self.alice.send("OPER admin wrong")
        self.assertEqual(
            self.alice.lines(), [":irc.test 464 alice :Password incorrect"]
        )
        self.assertNotIn("o", self.alice.conn.modes)

    def test_unknown_name_looks_like_a_wrong_password(self) -> None:
        self.alice.send("OPER nobody s3cret")
        self.assertEqual(
            self.alice.lines(), [":irc.test 464 alice :Password incorrect"]
        )
        self.assertNotIn("o", self.alice.conn.modes)

    def test_failures_are_logged_without_the_password(self) -> None:
        with capturedLogs() as events:
            self.alice.send("OPER admin hunter2")
        texts = [repr(event) for event in events]
        self.assertTrue(any(event.get("event") == "oper-failed" for event in events))
        self.assertTrue(any("admin" in text for text in texts))
        self.assertFalse(any("hunter2" in text for text in texts))

    def test_no_operators_configured(self) -> None:
        harness = Harness()
        bob = harness.register("bob")
        bob.send("OPER admin s3cret")
        self.assertEqual(bob.lines(), [":irc.test 491 bob :No O-lines for your host"])

    def test_needs_two_parameters(self) -> None:
        self.alice.send("OPER admin")
        self.assertEqual(self.alice.commands(), [numerics.ERR_NEEDMOREPARAMS])


class KillTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_operators_only(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("KILL bob :go away")
        self.assertEqual(
            alice.lines(),
            [":irc.test 481 alice :Permission Denied- You're not an IRC operator"],
        )
        self.assertFalse(bob.disconnected)

    def test_kill(self) -> None:
        oper = make_operator(self.harness.register("oper"))
        bob, carol = self.harness.channel_of("bob", "carol")
        oper.send("KILL bob :spamming the channel")
        self.assertEqual(
            bob.lines(),
            [
                ":oper!~oper@127.0.0.1 KILL bob :spamming the channel",
                "ERROR :Closing Link: 127.0.0.1 (Killed (oper (spamming the channel)))",
            ],
        )
        self.assertTrue(bob.disconnected)
        self.assertEqual(
            carol.lines(),
            [":bob!~bob@127.0.0.1 QUIT :Killed (oper (spamming the channel))"],
        )
        self.assertIsNone(self.harness.server.find_user("bob"))
        self.assertEqual(self.harness.server.whowas[0].nick, "bob")
        self.assertEqual(oper.lines(), [])

    def test_no_such_nick(self) -> None:
        oper = make_operator(self.harness.register("oper"))
        oper.send("KILL nobody :x")
        self.assertEqual(
            oper.lines(), [":irc.test 401 oper nobody :No such nick/channel"]
        )

    def test_cannot_kill_the_server(self) -> None:
        oper = make_operator(self.harness.register("oper"))
        oper.send("KILL IRC.TEST :x")
        self.assertEqual(oper.lines(), [":irc.test 483 oper :You cant kill a server!"])
        self.assertFalse(oper.disconnected)

    def test_needs_a_reason(self) -> None:
        oper = make_operator(self.harness.register("oper"))
        self.harness.register("bob")
        oper.send("KILL bob")
        self.assertEqual(oper.commands(), [numerics.ERR_NEEDMOREPARAMS])


class WallopsTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_operators_only(self) -> None:
        alice = self.harness.register("alice")
        alice.send("WALLOPS :hello")
        self.assertEqual(alice.commands(), [numerics.ERR_NOPRIVILEGES])

    def test_delivery(self) -> None:
        oper = make_operator(self.harness.register("oper"))
        other_oper = make_operator(self.harness.register("other"))
        watcher = self.harness.register("watcher")
        watcher.conn.modes.add("w")
        bystander = self.harness.register("bystander")
        unregistered = self.harness.connect()
        unregistered.send("NICK lurker")
        unregistered.raw()
        unregistered.conn.modes.add("w")
        calls = count_serializations(self)
        oper.send("WALLOPS :server restart at noon")
        line = b":oper!~oper@127.0.0.1 WALLOPS :server restart at noon\r\n"
        for client in (oper, other_oper, watcher):
            self.assertEqual(client.raw(), line)
        self.assertEqual(bystander.raw(), b"")
        self.assertEqual(unregistered.raw(), b"")
        self.assertEqual(calls[0], 1)

    def test_needs_text(self) -> None:
        oper = make_operator(self.harness.register("oper"))
        oper.send("WALLOPS", "WALLOPS :")
        self.assertEqual(
            oper.commands(), [numerics.ERR_NEEDMOREPARAMS, numerics.ERR_NEEDMOREPARAMS]
        )
