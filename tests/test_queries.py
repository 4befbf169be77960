"""Tests for WHO (and WHOX), WHOIS, WHOWAS, AWAY, ISON, USERHOST and HELP."""

from __future__ import annotations

from collections.abc import Callable

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.commands import COMMANDS, queries
from chat.config import Limits
from chat.relay import Relay
from tests.support import Harness


def count_serializations(test: TestCase) -> list[int]:
    """Patch `Relay._serialize` to count calls; returns the counter."""
    calls = [0]
    original: Callable[[Relay, int], bytes] = Relay._serialize

    def counting(self: Relay, profile: int) -> bytes:
        calls[0] += 1
        return original(self, profile)

    test.patch(Relay, "_serialize", counting)
    return calls


class WhoTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_channel(self) -> None:
        _alice, bob = self.harness.channel_of("alice", "bob")
        bob.send("WHO #chan")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 352 bob #chan ~alice 127.0.0.1 irc.test alice H@ "
                ":0 alice Real",
                ":irc.test 352 bob #chan ~bob 127.0.0.1 irc.test bob H :0 bob Real",
                ":irc.test 315 bob #chan :End of WHO list",
            ],
        )

    def test_flags_away_operator_and_multi_prefix(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        channel = self.harness.server.find_channel("#chan")
        assert channel is not None
        channel.set_member_mode(alice.conn, "v", True)
        alice.conn.away = "lunch"
        alice.conn.modes.add("o")
        bob.send("WHO alice")
        self.assertEqual(bob.messages()[0].params[6], "G*@")
        bob.conn.set_cap("multi-prefix", True)
        bob.send("WHO #chan")
        self.assertEqual(bob.messages()[0].params[6], "G*@+")

    def test_exact_nick_and_unknown(self) -> None:
        self.harness.register("alice")
        bob = self.harness.register("bob")
        bob.send("WHO ALICE", "WHO nobody")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 352 bob * ~alice 127.0.0.1 irc.test alice H :0 alice Real",
                ":irc.test 315 bob ALICE :End of WHO list",
                ":irc.test 315 bob nobody :End of WHO list",
            ],
        )

    def test_unknown_channel_and_missing_mask(self) -> None:
        bob = self.harness.register("bob")
        bob.send("WHO #nowhere", "WHO")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 315 bob #nowhere :End of WHO list",
                ":irc.test 352 bob * ~bob 127.0.0.1 irc.test bob H :0 bob Real",
                ":irc.test 315 bob * :End of WHO list",
            ],
        )

    def test_mask_matches_nick_user_host_and_realname(self) -> None:
        self.harness.register("alice")
        self.harness.register("bob", host="10.0.0.7")
        carol = self.harness.register("carol")
        for mask, expected in (
            ("a*", ["alice"]),
            ("~b?b", ["bob"]),
            ("10.0.*", ["bob"]),
            ("carol rea*", ["carol"]),
            ("*!*@10.*", ["bob"]),
            ("zz*", []),
        ):
            carol.send(f"WHO :{mask}" if " " in mask else f"WHO {mask}")
            messages = carol.messages()
            self.assertEqual(
                [m.params[5] for m in messages if m.command == "352"], expected, mask
            )
            shown = "*" if " " in mask else mask
            self.assertEqual(messages[-1].params[1:], (shown, "End of WHO list"))

    def test_invisible_users_need_a_shared_channel(self) -> None:
        alice = self.harness.register("alice")
        alice.conn.modes.add("i")
        bob = self.harness.register("bob")
        bob.send("WHO *")
        self.assertEqual(
            [m.params[5] for m in bob.messages() if m.command == "352"], ["bob"]
        )
        bob.send("WHO alice")
        self.assertEqual(bob.commands(), ["352", "315"])
        alice.send("JOIN #chan")
        bob.send("JOIN #chan")
        bob.raw()
        bob.send("WHO *")
        self.assertEqual(
            [m.params[5] for m in bob.messages() if m.command == "352"],
            ["alice", "bob"],
        )

    def test_operators_see_invisible_users(self) -> None:
        alice = self.harness.register("alice")
        alice.conn.modes.add("i")
        oper = self.harness.register("oper")
        oper.conn.modes.add("o")
        oper.send("WHO *")
        self.assertEqual(
            [m.params[5] for m in oper.messages() if m.command == "352"],
            ["alice", "oper"],
        )

    def test_channel_from_outside(self) -> None:
        _alice, bob = self.harness.channel_of("alice", "bob")
        bob.conn.modes.add("i")
        carol = self.harness.register("carol")
        carol.send("WHO #chan")
        self.assertEqual(
            [m.params[5] for m in carol.messages() if m.command == "352"], ["alice"]
        )
        channel = self.harness.server.find_channel("#chan")
        assert channel is not None
        channel.flags.add("s")
        carol.send("WHO #chan")
        self.assertEqual(carol.commands(), ["315"])

    def test_channel_field_hides_secret_channels(self) -> None:
        _alice, bob = self.harness.channel_of("alice", "bob", channel="#secret")
        channel = self.harness.server.find_channel("#secret")
        assert channel is not None
        channel.flags.add("s")
        carol = self.harness.register("carol")
        carol.send("WHO alice")
        self.assertEqual(carol.messages()[0].params[1], "*")
        bob.send("WHO alice")
        self.assertEqual(bob.messages()[0].params[1], "#secret")

    def test_channel_field_prefers_a_shared_channel(self) -> None:
        alice = self.harness.register("alice")
        bob = self.harness.register("bob")
        alice.send("JOIN #first", "JOIN #shared")
        bob.send("JOIN #shared")
        bob.raw()
        bob.send("WHO alice")
        self.assertEqual(bob.messages()[0].params[1], "#shared")

    def test_operators_only_flag(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        bob.conn.modes.add("o")
        alice.send("WHO #chan o", "WHO * o", "WHO alice o")
        self.assertEqual(
            [
                (m.command, m.params[5] if m.command == "352" else "")
                for m in alice.messages()
            ],
            [("352", "bob"), ("315", ""), ("352", "bob"), ("315", ""), ("315", "")],
        )

    def test_zero_is_everyone(self) -> None:
        self.harness.register("alice")
        bob = self.harness.register("bob")
        bob.send("WHO 0")
        messages = bob.messages()
        self.assertEqual(
            [m.params[5] for m in messages if m.command == "352"], ["alice", "bob"]
        )
        self.assertEqual(messages[-1].params[1], "0")

    def test_wildcard_results_are_capped(self) -> None:
        self.patch(queries, "WHO_MAX_RESULTS", 3)
        for index in range(5):
            self.harness.register(f"user{index}")
        asker = self.harness.register("asker")
        asker.send("WHO *")
        self.assertEqual(
            asker.lines()[3:],
            [
                ":irc.test 416 asker WHO :output too large, truncated",
                ":irc.test 315 asker * :End of WHO list",
            ],
        )

    def test_channel_and_exact_nick_are_not_capped(self) -> None:
        self.patch(queries, "WHO_MAX_RESULTS", 1)
        _alice, bob = self.harness.channel_of("alice", "bob")
        bob.send("WHO #chan")
        self.assertEqual(bob.commands(), ["352", "352", "315"])

    def test_exactly_the_cap_is_not_truncated(self) -> None:
        self.patch(queries, "WHO_MAX_RESULTS", 2)
        self.harness.register("alice")
        bob = self.harness.register("bob")
        bob.send("WHO *")
        self.assertEqual(bob.commands(), ["352", "352", "315"])

    def test_ipv6_host_is_a_safe_parameter(self) -> None:
        self.harness.register("six", host="::1")
        bob = self.harness.register("bob")
        bob.send("WHO six")
        self.assertEqual(bob.messages()[0].params[3], "0::1")


class WhoxTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob = self.harness.channel_of("alice", "bob")

    def test_all_fields(self) -> None:
        self.alice.conn.modes.add("o")
        self.harness.clock.advance(42)
        self.bob.send("WHO #chan %tcuihsnfdlaor,123")
        self.assertEqual(
            self.bob.lines(),
            [
                ":irc.test 354 bob 123 #chan ~alice 255.255.255.255 127.0.0.1 "
                "irc.test alice H*@ 0 42 0 n/a :alice Real",
                ":irc.test 354 bob 123 #chan ~bob 127.0.0.1 127.0.0.1 "
                "irc.test bob H 0 42 0 n/a :bob Real",
                ":irc.test 315 bob #chan :End of WHO list",
            ],
        )

    def test_fields_come_in_fixed_order(self) -> None:
        self.bob.send("WHO alice %rna")
        self.assertEqual(self.bob.lines()[0], ":irc.test 354 bob alice 0 :alice Real")

    def test_bad_or_missing_token(self) -> None:
        self.bob.send("WHO alice %tn,abcd", "WHO alice %tn")
        self.assertEqual(
            [m.params for m in self.bob.messages() if m.command == "354"],
            [("bob", "0", "alice"), ("bob", "0", "alice")],
        )

    def test_operator_filter_before_percent(self) -> None:
        self.bob.conn.modes.add("o")
        self.alice.send("WHO #chan o%n")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 354 alice bob",
                ":irc.test 315 alice #chan :End of WHO list",
            ],
        )

    def test_operators_see_addresses(self) -> None:
        self.bob.conn.modes.add("o")
        self.bob.send("WHO alice %i")
        self.assertEqual(self.bob.messages()[0].params, ("bob", "127.0.0.1"))


class WhoisTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_other_user(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        self.harness.clock.advance(30)
        alice.send("PRIVMSG #chan hi")
        self.harness.clock.advance(12)
        bob.raw()
        bob.send("WHOIS alice")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 311 bob alice ~alice 127.0.0.1 * :alice Real",
                ":irc.test 319 bob alice @#chan",
                ":irc.test 312 bob alice irc.test TestNet",
                ":irc.test 317 bob alice 12 0 :seconds idle, signon time",
                ":irc.test 318 bob alice :End of /WHOIS list",
            ],
        )

    def test_self_sees_actual_host(self) -> None:
        alice = self.harness.register("alice")
        alice.send("WHOIS alice")
        messages = alice.messages()
        self.assertEqual(
            [m.command for m in messages], ["311", "312", "378", "338", "317", "318"]
        )
        self.assertEqual(
            messages[2].params[2], "is connecting from ~alice@127.0.0.1 127.0.0.1"
        )
        self.assertEqual(
            messages[3].params[1:], ("alice", "127.0.0.1", "Is actually using host")
        )

    def test_operator_sees_actual_host(self) -> None:
        self.harness.register("alice")
        oper = self.harness.register("oper")
        oper.conn.modes.add("o")
        oper.send("WHOIS alice")
        self.assertIn("338", oper.commands())

    def test_operator_away_and_secure(self) -> None:
        alice = self.harness.register("alice")
        alice.conn.modes.add("o")
        alice.conn.away = "gone fishing"
        alice.conn.secure = True
        bob = self.harness.register("bob")
        bob.send("WHOIS alice")
        lines = bob.lines()
        self.assertEqual(
            lines[2:5],
            [
                ":irc.test 313 bob alice :is an IRC operator",
                ":irc.test 301 bob alice :gone fishing",
                ":irc.test 671 bob alice :is using a secure connection",
            ],
        )

    def test_channels_hide_secret_and_invisible(self) -> None:
        alice = self.harness.register("alice")
        bob = self.harness.register("bob")
        alice.send("JOIN #public", "JOIN #hidden", "JOIN #shared")
        bob.send("JOIN #shared")
        channel = self.harness.server.find_channel("#hidden")
        assert channel is not None
        channel.flags.add("s")
        bob.raw()
        bob.send("WHOIS alice")
        self.assertEqual(bob.messages()[1].params[2], "@#public @#shared")
        alice.conn.modes.add("i")
        bob.send("WHOIS alice")
        self.assertEqual(bob.messages()[1].params[2], "@#shared")
        alice.raw()
        alice.send("WHOIS alice")
        self.assertEqual(alice.messages()[1].params[2], "@#public @#hidden @#shared")

    def test_channels_multi_prefix(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        channel = self.harness.server.find_channel("#chan")
        assert channel is not None
        channel.set_member_mode(alice.conn, "v", True)
        bob.conn.set_cap("multi-prefix", True)
        bob.send("WHOIS alice")
        self.assertEqual(bob.messages()[1].params[2], "@+#chan")

    def test_long_channel_lists_are_split(self) -> None:
        alice = self.harness.register("alice")
        names = [f"#{index:02d}" + "x" * 40 for index in range(12)]
        for name in names:
            alice.send(f"JOIN {name}")
        alice.raw()
        alice.send("WHOIS alice")
        lines = [m.params[2] for m in alice.messages() if m.command == "319"]
        self.assertEqual(len(lines), 2)
        self.assertTrue(
            all(len(line) <= queries.WHOIS_CHANNELS_BUDGET for line in lines)
        )
        self.assertEqual(" ".join(lines).split(), ["@" + name for name in names])

    def test_no_such_nick(self) -> None:
        bob = self.harness.register("bob")
        bob.send("WHOIS nobody")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 401 bob nobody :No such nick/channel",
                ":irc.test 318 bob nobody :End of /WHOIS list",
            ],
        )

    def test_no_nickname_given(self) -> None:
        bob = self.harness.register("bob")
        bob.send("WHOIS", "WHOIS :")
        self.assertEqual(bob.commands(), ["431", "431"])

    def test_server_parameter(self) -> None:
        self.harness.register("alice")
        bob = self.harness.register("bob")
        bob.send("WHOIS irc.test alice")
        self.assertEqual(bob.commands()[0], "311")
        bob.send("WHOIS alice alice")
        self.assertEqual(bob.commands()[0], "311")
        bob.send("WHOIS elsewhere.example alice")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 402 bob elsewhere.example :No such server",
                ":irc.test 318 bob alice :End of /WHOIS list",
            ],
        )

    def test_only_the_first_target(self) -> None:
        self.harness.register("alice")
        self.harness.register("carol")
        bob = self.harness.register("bob")
        bob.send("WHOIS alice,carol")
        messages = bob.messages()
        self.assertEqual(
            [m.params[1] for m in messages if m.command == "311"], ["alice"]
        )
        self.assertEqual(messages[-1].params[1], "alice,carol")


class WhowasTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_after_quit(self) -> None:
        alice = self.harness.register("alice")
        self.harness.clock.advance(86400)
        alice.send("QUIT")
        bob = self.harness.register("bob")
        bob.send("WHOWAS ALICE")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 314 bob alice ~alice 127.0.0.1 * :alice Real",
                ":irc.test 312 bob alice irc.test :Fri Jan 02 00:00:00 1970 UTC",
                ":irc.test 369 bob ALICE :End of WHOWAS",
            ],
        )

    def test_after_nick_change(self) -> None:
        bob = self.harness.register("bob")
        bob.send("NICK robert", "WHOWAS bob")
        self.assertEqual(bob.commands(), ["NICK", "314", "312", "369"])

    def test_newest_first_and_count(self) -> None:
        for host in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            self.harness.register("alice", host=host).send("QUIT")
        bob = self.harness.register("bob")
        bob.send("WHOWAS alice 2")
        self.assertEqual(
            [m.params[3] for m in bob.messages() if m.command == "314"],
            ["10.0.0.3", "10.0.0.2"],
        )
        for count in ("0", "x", "-1"):
            bob.send(f"WHOWAS alice {count}")
            self.assertEqual(bob.commands().count("314"), 3, count)

    def test_unknown(self) -> None:
        bob = self.harness.register("bob")
        bob.send("WHOWAS nobody")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 406 bob nobody :There was no such nickname",
                ":irc.test 369 bob nobody :End of WHOWAS",
            ],
        )

    def test_no_nickname_given(self) -> None:
        bob = self.harness.register("bob")
        bob.send("WHOWAS", "WHOWAS :")
        self.assertEqual(bob.commands(), ["431", "431"])


class AwayTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_set_and_unset(self) -> None:
        alice = self.harness.register("alice")
        alice.send("AWAY :gone fishing")
        self.assertEqual(
            alice.lines(), [":irc.test 306 alice :You have been marked as being away"]
        )
        self.assertEqual(alice.conn.away, "gone fishing")
        alice.send("AWAY")
        self.assertEqual(
            alice.lines(),
            [":irc.test 305 alice :You are no longer marked as being away"],
        )
        self.assertIsNone(alice.conn.away)
        alice.send("AWAY x", "AWAY :")
        self.assertEqual(alice.commands(), ["306", "305"])
        self.assertIsNone(alice.conn.away)

    def test_truncated_to_awaylen(self) -> None:
        harness = Harness(limits=Limits(away_length=5))
        alice = harness.register("alice")
        alice.send("AWAY :0123456789")
        self.assertEqual(alice.conn.away, "01234")

    def test_away_notify(self) -> None:
        alice, bob, carol = self.harness.channel_of("alice", "bob", "carol")
        bob.conn.set_cap("away-notify", True)
        alice.conn.set_cap("away-notify", True)
        alice.send("AWAY lunch")
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 AWAY :lunch"])
        self.assertEqual(carol.lines(), [])
        self.assertEqual(alice.commands(), ["306"])
        alice.send("AWAY dinner")
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 AWAY :dinner"])
        alice.send("AWAY dinner")
        self.assertEqual(bob.lines(), [])
        alice.send("AWAY")
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 AWAY"])
        alice.send("AWAY")
        self.assertEqual(bob.lines(), [])

    def test_away_notify_is_serialized_once(self) -> None:
        clients = self.harness.channel_of("alice", "bob", "carol", "dave")
        for client in clients[1:]:
            client.conn.set_cap("away-notify", True)
        calls = count_serializations(self)
        clients[0].send("AWAY :brb")
        self.assertEqual(calls[0], 1)
        self.assertEqual(
            {client.raw() for client in clients[1:]},
            {b":alice!~alice@127.0.0.1 AWAY :brb\r\n"},
        )

    def test_send_away_on_join(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        bob.conn.set_cap("away-notify", True)
        channel = self.harness.server.find_channel("#chan")
        assert channel is not None
        queries.send_away_on_join(self.harness.server, alice.conn, channel)
        self.assertEqual(bob.lines(), [])
        alice.conn.away = "afk"
        alice.conn.set_cap("away-notify", True)
        queries.send_away_on_join(self.harness.server, alice.conn, channel)
        self.assertEqual(bob.lines(), [":alice!~alice@127.0.0.1 AWAY :afk"])
        self.assertEqual(alice.lines(), [])


class IsonUserhostTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice = self.harness.register("alice")
        self.bob = self.harness.register("Bob")

    def test_ison(self) -> None:
        self.alice.send("ISON bob nobody ALICE", "ISON :alice bob alice", "ISON nobody")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 303 alice :Bob alice",
                ":irc.test 303 alice :alice Bob",
                ":irc.test 303 alice :",
            ],
        )

    def test_ison_needs_a_nick(self) -> None:
        self.alice.send("ISON")
        self.assertEqual(self.alice.commands(), [numerics.ERR_NEEDMOREPARAMS])

    def test_userhost(self) -> None:
        self.bob.conn.modes.add("o")
        self.bob.conn.away = "away"
        self.alice.send("USERHOST alice bob nobody")
        self.assertEqual(
            self.alice.lines(),
            [":irc.test 302 alice :alice=+~alice@127.0.0.1 Bob*=-~bob@127.0.0.1"],
        )

    def test_userhost_at_most_five(self) -> None:
        self.alice.send("USERHOST n1 n2 n3 n4 n5 alice", "USERHOST :n1 alice")
        self.assertEqual(
            self.alice.lines(),
            [":irc.test 302 alice :", ":irc.test 302 alice alice=+~alice@127.0.0.1"],
        )

    def test_userhost_needs_a_nick(self) -> None:
        self.alice.send("USERHOST")
        self.assertEqual(self.alice.commands(), [numerics.ERR_NEEDMOREPARAMS])


class HelpTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice = self.harness.register("alice")

    def test_every_command_has_help(self) -> None:
        missing = sorted(set(COMMANDS) - set(queries.HELP_TEXTS))
        self.assertEqual(missing, [], "add these to queries.HELP_TEXTS")

    def test_help_for_every_command(self) -> None:
        for name in COMMANDS:
            self.alice.send(f"HELP {name.lower()}")
            self.harness.clock.advance(1)  # more commands than the flood burst
            messages = self.alice.messages()
            self.assertEqual(messages[0].command, numerics.RPL_HELPSTART, name)
            self.assertEqual(
                messages[0].params[1:], (name.lower(), f"** The {name} command **")
            )
            self.assertEqual(messages[1].params[2], "")
            self.assertEqual(messages[-1].command, numerics.RPL_ENDOFHELP)
            texts = [m.params[2] for m in messages[1:]]
            self.assertEqual(texts[1:], list(queries.HELP_TEXTS[name]))

    def test_index_lists_every_command(self) -> None:
        self.alice.send("HELP")
        messages = self.alice.messages()
        self.assertEqual(messages[0].params[1:], ("*", "** Help System **"))
        self.assertEqual(messages[-1].command, numerics.RPL_ENDOFHELP)
        self.assertEqual({m.command for m in messages[1:-1]}, {numerics.RPL_HELPTXT})
        listed = " ".join(m.params[2] for m in messages[3:]).split()
        self.assertEqual(listed, sorted(COMMANDS))

    def test_helpop_answers_as_help(self) -> None:
        self.alice.send("HELP PRIVMSG")
        expected = [(m.command, m.params[2:]) for m in self.alice.messages()]
        self.alice.send("HELPOP privmsg")
        messages = self.alice.messages()
        self.assertEqual([(m.command, m.params[2:]) for m in messages], expected)
        self.assertEqual({m.params[1] for m in messages}, {"privmsg"})
        self.alice.send("HELPOP nothing")
        self.assertEqual(self.alice.commands(), [numerics.ERR_HELPNOTFOUND])

    def test_unknown_subject(self) -> None:
        self.alice.send("HELP nothing", "HELP :two words")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 524 alice nothing :No help available on this topic",
                ":irc.test 524 alice * :No help available on this topic",
            ],
        )

    def test_help_texts_name_their_command(self) -> None:
        for name, lines in queries.HELP_TEXTS.items():
            self.assertTrue(lines[0].startswith(name), name)
