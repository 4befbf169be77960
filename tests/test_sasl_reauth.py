"""SASL after registration and re-authentication (IRCv3 sasl-3.2)."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from tests.accounts_support import (
    PASSWORD,
    account_harness,
    make_account,
    plain,
    sasl_connect,
)
from tests.ircv3_support import registered, with_caps


class ReauthenticationTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()
        make_account(self.harness, "alice")
        make_account(self.harness, "jilles")

    def test_after_registration(self) -> None:
        client = registered(self.harness, "user", "sasl")
        client.send("AUTHENTICATE PLAIN")
        self.assertEqual(client.lines(), [":irc.test AUTHENTICATE +"])
        client.send(f"AUTHENTICATE {plain('alice', PASSWORD)}")
        self.assertEqual(
            client.commands(), [numerics.RPL_LOGGEDIN, numerics.RPL_SASLSUCCESS]
        )
        self.assertEqual(client.conn.account, "alice")

    def test_to_another_account(self) -> None:
        client = sasl_connect(self.harness, "user")
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        client.send("CAP END")
        self.assertTrue(client.conn.registered)
        watcher = registered(self.harness, "watcher", "account-notify")
        for each in (client, watcher):
            each.send("JOIN #c")
        client.raw()
        watcher.raw()
        client.send("AUTHENTICATE PLAIN")
        self.assertEqual(client.lines(), [":irc.test AUTHENTICATE +"])
        client.send(f"AUTHENTICATE {plain('jilles', PASSWORD)}")
        got = client.messages()
        self.assertEqual(
            [m.command for m in got], [numerics.RPL_LOGGEDIN, numerics.RPL_SASLSUCCESS]
        )
        self.assertEqual(got[0].params[2], "jilles")
        self.assertEqual(client.conn.account, "jilles")
        self.assertEqual(watcher.lines(), [":user!~user@127.0.0.1 ACCOUNT jilles"])

    def test_to_the_same_account_tells_nobody(self) -> None:
        client = sasl_connect(self.harness, "user")
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        client.send("CAP END")
        watcher = with_caps(self.harness.register("watcher"), "account-notify")
        for each in (client, watcher):
            each.send("JOIN #c")
        client.raw()
        watcher.raw()
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        self.assertEqual(client.commands()[-1], numerics.RPL_SASLSUCCESS)
        self.assertEqual(watcher.lines(), [])

    def test_failed_reauthentication_keeps_the_account(self) -> None:
        client = sasl_connect(self.harness, "user")
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('alice', PASSWORD)}")
        client.send("CAP END")
        client.raw()
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('jilles', 'wrong')}")
        self.assertEqual(client.commands()[-1], numerics.ERR_SASLFAIL)
        self.assertEqual(client.conn.account, "alice")
