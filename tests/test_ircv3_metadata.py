"""draft/metadata-2: METADATA on users and channels, subscriptions."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.commands.capabilities import SUPPORTED_CAPS
from chat.message import Message
from chat.metadata import MAX_KEYS, MAX_SUBS, MAX_VALUE_BYTES
from tests.ircv3_support import registered
from tests.support import FakeClient, Harness

CAPS = ("draft/metadata-2", "batch")


def batch_of(messages: list[Message], kind: str = "metadata") -> list[Message]:
    """The messages inside the first batch of *kind*."""
    start = next(m for m in messages if m.command == "BATCH" and m.params[1] == kind)
    ref = start.params[0][1:]
    return [m for m in messages if m.tags.get("batch") == ref]


class MetadataTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.foo = registered(self.harness, "foo", *CAPS)
        self.bar = registered(self.harness, "bar", *CAPS)

    def share_channel(self) -> None:
        for client in (self.foo, self.bar):
            client.send("JOIN #chan")
        self.foo.raw()
        self.bar.raw()

    def test_advertised_with_limits(self) -> None:
        value = SUPPORTED_CAPS["draft/metadata-2"]
        self.assertEqual(value, SUPPORTED_CAPS["draft/metadata-3"])
        assert value is not None
        self.assertIn("before-connect", value.split(","))
        self.assertIn(f"max-keys={MAX_KEYS}", value.split(","))
        self.assertIn(f"max-subs={MAX_SUBS}", value.split(","))

    def test_set_get_and_unset_own(self) -> None:
        self.foo.send("METADATA * SET display-name :Foo The First")
        self.assertEqual(
            self.foo.lines(),
            [":irc.test 761 foo foo display-name * :Foo The First"],
        )
        self.foo.send("METADATA foo GET display-name avatar")
        got = batch_of(self.foo.messages())
        self.assertEqual(
            [(m.command, m.params[:3]) for m in got],
            [
                ("761", ("foo", "foo", "display-name")),
                ("766", ("foo", "foo", "avatar")),
            ],
        )
        self.foo.send("METADATA * SET display-name")
        self.assertEqual(self.foo.messages()[0].command, numerics.RPL_KEYNOTSET)
        self.foo.send("METADATA * LIST")
        self.assertEqual(batch_of(self.foo.messages()), [])

    def test_others_and_whois(self) -> None:
        self.share_channel()
        self.foo.send("METADATA * SET avatar :https://example.com/a.png")
        self.foo.raw()
        self.assertEqual(self.bar.lines(), [], "not subscribed: nothing")
        self.bar.send("METADATA foo GET avatar")
        self.assertEqual(
            batch_of(self.bar.messages())[0].params,
            ("bar", "foo", "avatar", "*", "https://example.com/a.png"),
        )
        self.bar.send("WHOIS foo")
        self.assertIn(
            ("bar", "foo", "avatar", "*", "https://example.com/a.png"),
            [m.params for m in self.bar.messages() if m.command == "760"],
        )
        self.bar.send("METADATA foo SET avatar :mine now", "METADATA foo CLEAR")
        self.assertEqual(
            [m.params[:4] for m in self.bar.messages()],
            [
                ("METADATA", "KEY_NO_PERMISSION", "foo", "avatar"),
                ("METADATA", "KEY_NO_PERMISSION", "foo", "*"),
            ],
        )
        self.assertEqual(
            self.foo.conn.metadata, {"avatar": "https://example.com/a.png"}
        )

    def test_subscribers_hear_changes_of_people_they_see(self) -> None:
        self.bar.send("METADATA * SUB avatar display-name")
        self.assertEqual(
            self.bar.lines(),
            [
                ":irc.test 770 bar avatar display-name",
                ":irc.test 774 bar *ALL 0 :Try again later",
            ],
        )
        self.foo.send("METADATA * SET display-name :Foo")
        self.assertEqual(self.bar.lines(), [], "no shared channel yet")
        self.foo.send("JOIN #chan")
        self.bar.send("JOIN #chan")
        joined = self.bar.messages()
        self.assertEqual(
            [m.params for m in joined if m.command == "761"],
            [("*", "foo", "display-name", "*", "Foo")],
        )
        self.foo.raw()
        self.foo.send(
            "METADATA * SET display-name :Foo Two", "METADATA * SET status :x"
        )
        self.assertEqual(
            self.bar.lines(),
            [":irc.test 761 * foo display-name * :Foo Two"],
            "status is not subscribed",
        )
        self.foo.send("METADATA * SET display-name")
        self.assertEqual(
            self.bar.lines(), [":irc.test 766 * foo display-name :Key deleted"]
        )
        self.bar.send("METADATA * UNSUB display-name nothing", "METADATA * SUBS")
        self.assertEqual(
            [
                (m.command, m.params)
                for m in self.bar.messages()
                if m.command != "BATCH"
            ],
            [("771", ("bar", "display-name")), ("772", ("bar", "avatar"))],
        )

    def test_monitor_watchers_hear_too(self) -> None:
        self.bar.send("METADATA * SUB status", "MONITOR + foo")
        self.bar.raw()
        self.foo.send("METADATA * SET status :busy")
        self.assertEqual(self.bar.lines(), [":irc.test 761 * foo status * busy"])

    def test_channel_metadata(self) -> None:
        self.share_channel()
        self.bar.send("METADATA * SUB display-name")
        self.bar.raw()
        self.foo.send("METADATA #chan SET display-name :Hash Channel")
        self.assertEqual(self.foo.messages()[0].command, "761")
        self.assertEqual(
            self.bar.lines(), [":irc.test 761 * #chan display-name * :Hash Channel"]
        )
        self.bar.send("METADATA #chan SET display-name :Mine")
        self.assertEqual(
            self.bar.messages()[0].params[:4],
            ("METADATA", "KEY_NO_PERMISSION", "#chan", "display-name"),
        )
        self.bar.send("METADATA #chan LIST")
        self.assertEqual(
            [m.params[2:] for m in batch_of(self.bar.messages())],
            [("display-name", "*", "Hash Channel")],
        )
        self.foo.send("METADATA #chan CLEAR")
        self.assertEqual([m.command for m in batch_of(self.foo.messages())], ["766"])
        self.assertEqual(
            self.bar.lines(), [":irc.test 766 * #chan display-name :Key deleted"]
        )

    def test_channel_metadata_is_for_members(self) -> None:
        self.foo.send(
            "JOIN #priv", "MODE #priv +i", "METADATA #priv SET topic2 :secret"
        )
        self.foo.raw()
        for subcommand in ("GET topic2", "LIST", "SYNC"):
            self.bar.send(f"METADATA #priv {subcommand}")
            got = self.bar.messages()
            self.assertEqual(got[0].params[:2], ("METADATA", "KEY_NO_PERMISSION"))
            self.assertNotIn("secret", [p for m in got for p in m.params])

    def test_bad_keys_values_and_targets(self) -> None:
        self.foo.send(
            "METADATA * SET Bad!Key :x",
            f"METADATA * SET display-name :{'x' * (MAX_VALUE_BYTES + 1)}",
            "METADATA nobody LIST",
            "METADATA * FROB",
            "METADATA * SUB ok Bad",
        )
        self.assertEqual(
            [m.params[:2] for m in self.foo.messages()],
            [
                ("METADATA", "INVALID_KEY"),
                ("METADATA", "INVALID_VALUE"),
                ("METADATA", "INVALID_TARGET"),
                ("METADATA", "INVALID_PARAMS"),
                ("METADATA", "INVALID_KEY"),
            ],
        )
        self.assertEqual(self.foo.conn.metadata_subs, set())

    def test_limits(self) -> None:
        for index in range(MAX_KEYS):
            self.foo.send(f"METADATA * SET k{index} :v")
            self.harness.clock.advance(1)  # past fakelag
        self.foo.raw()
        self.foo.send("METADATA * SET one-more :v")
        self.assertEqual(
            self.foo.messages()[0].params[:4],
            ("METADATA", "LIMIT_REACHED", "foo", str(MAX_KEYS)),
        )
        keys = [f"s{index}" for index in range(MAX_SUBS + 1)]
        for start in range(0, len(keys), 13):  # 15 parameters at most
            self.foo.send("METADATA * SUB " + " ".join(keys[start : start + 13]))
        fails = [m for m in self.foo.messages() if m.command == "FAIL"]
        self.assertEqual(
            fails[0].params[:4], ("METADATA", "LIMIT_REACHED", keys[-1], str(MAX_SUBS))
        )
        self.assertEqual(len(self.foo.conn.metadata_subs), MAX_SUBS)


class BeforeConnectTests(TestCase):
    def test_set_before_registration_shows_in_the_burst(self) -> None:
        harness = Harness()
        client: FakeClient = harness.connect()
        client.send("CAP LS 302", "CAP REQ :draft/metadata-2 batch")
        client.raw()
        client.send("METADATA * SET display-name :Early Bird")
        self.assertEqual(
            client.lines(), [":irc.test 761 * * display-name * :Early Bird"]
        )
        client.send("METADATA bob SET display-name :x", "METADATA * SYNC")
        self.assertEqual(
            [m.command for m in client.messages()],
            ["FAIL", numerics.RPL_METADATASYNCLATER],
        )
        client.send("NICK foo", "USER foo 0 * :Foo", "CAP END")
        burst = batch_of(client.messages())
        self.assertEqual(
            [m.params for m in burst], [("*", "foo", "display-name", "*", "Early Bird")]
        )
        other = harness.register("other")
        other.send("METADATA foo GET display-name")
        self.assertEqual(other.messages()[0].params[-1], "Early Bird")
