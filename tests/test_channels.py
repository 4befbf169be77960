"""Tests for the channel commands: JOIN, PART, NAMES, TOPIC, LIST, KICK, INVITE."""

from __future__ import annotations

from dataclasses import replace

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.commands.channels import truncate_utf8
from chat.config import Limits
from tests.support import FakeClient, Harness

ALICE = ":alice!~alice@127.0.0.1"
BOB = ":bob!~bob@127.0.0.1"


class JoinTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_join_creates_channel_with_operator(self) -> None:
        alice = self.harness.register("alice")
        alice.send("JOIN #new")
        self.assertEqual(
            alice.lines(),
            [
                f"{ALICE} JOIN #new",
                ":irc.test 353 alice = #new @alice",
                ":irc.test 366 alice #new :End of /NAMES list",
            ],
        )

    def test_join_seen_by_members_and_topic_sent(self) -> None:
        (alice,) = self.harness.channel_of("alice")
        alice.send("TOPIC #chan :the topic")
        alice.raw()
        self.harness.clock.advance(5)
        bob = self.harness.register("bob")
        bob.send("JOIN #chan")
        self.assertEqual(alice.lines(), [f"{BOB} JOIN #chan"])
        self.assertEqual(
            bob.lines(),
            [
                f"{BOB} JOIN #chan",
                ":irc.test 332 bob #chan :the topic",
                ":irc.test 333 bob #chan alice 0",
                ":irc.test 353 bob = #chan :@alice bob",
                ":irc.test 366 bob #chan :End of /NAMES list",
            ],
        )

    def test_bad_names(self) -> None:
        alice = self.harness.register("alice")
        alice.send("JOIN nochan", "JOIN #" + "x" * 60, "JOIN #a\x07b", "JOIN #")
        self.assertEqual(
            alice.commands(),
            [numerics.ERR_NOSUCHCHANNEL] * 4,
        )
        self.assertEqual(self.harness.server.channels, {})

    def test_empty_join_needs_params(self) -> None:
        alice = self.harness.register("alice")
        alice.send("JOIN", "JOIN :", "JOIN ,,")
        self.assertEqual(alice.commands(), [numerics.ERR_NEEDMOREPARAMS] * 3)

    def test_several_channels_with_keys(self) -> None:
        alice, bob = self.harness.register("alice"), self.harness.register("bob")
        alice.send("JOIN #a,#b,#c", "MODE #a +k ka", "MODE #c +k kc")
        alice.raw()
        bob.send("JOIN #a,#b,#c ka,,wrong")
        messages = bob.messages()
        joined = [m.params[0] for m in messages if m.command == "JOIN"]
        self.assertEqual(joined, ["#a", "#b"])
        refused = [m.params[1:] for m in messages if m.command == "475"]
        self.assertEqual(refused, [("#c", "Cannot join channel (+k)")])
        bob.send("JOIN #c kc")
        self.assertEqual(bob.commands()[0], "JOIN")

    def test_join_zero_parts_everything(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("JOIN #other", "JOIN 0")
        lines = alice.lines()
        self.assertIn(f"{ALICE} PART #chan", lines)
        self.assertIn(f"{ALICE} PART #other", lines)
        self.assertEqual(alice.conn.channels, {})
        self.assertEqual(bob.lines(), [f"{ALICE} PART #chan"])
        self.assertNotIn("#other", self.harness.server.channels)

    def test_join_zero_then_channel(self) -> None:
        (alice,) = self.harness.channel_of("alice")
        alice.send("JOIN 0,#next")
        self.assertEqual(list(alice.conn.channels), ["#next"])

    def test_join_twice_is_silent(self) -> None:
        (alice,) = self.harness.channel_of("alice")
        alice.send("JOIN #CHAN")
        self.assertEqual(alice.lines(), [])

    def test_too_many_channels(self) -> None:
        self.harness = Harness(limits=Limits(max_channels=2))
        alice = self.harness.register("alice")
        alice.send("JOIN #a,#b,#c")
        self.assertEqual(
            alice.lines()[-1],
            ":irc.test 405 alice #c :You have joined too many channels",
        )

    def test_refusals(self) -> None:
        alice, _bob = self.harness.channel_of("alice", "bob")
        carol = self.harness.register("carol")
        alice.send("MODE #chan +l 2")
        carol.send("JOIN #chan")
        self.assertEqual(
            carol.lines(), [":irc.test 471 carol #chan :Cannot join channel (+l)"]
        )
        alice.send("MODE #chan -l+i")
        carol.send("JOIN #chan")
        self.assertEqual(
            carol.lines(), [":irc.test 473 carol #chan :Cannot join channel (+i)"]
        )
        alice.send("MODE #chan -i+b carol")
        carol.send("JOIN #chan")
        self.assertEqual(
            carol.lines(), [":irc.test 474 carol #chan :Cannot join channel (+b)"]
        )
        self.assertNotIn(carol.conn, self.harness.server.channels["#chan"].members)

    def test_invitation_passes_invite_only_and_bans_once(self) -> None:
        alice, _bob = self.harness.channel_of("alice", "bob")
        carol = self.harness.register("carol")
        alice.send("MODE #chan +ib carol", "INVITE carol #chan")
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands()[:2], ["INVITE", "JOIN"])
        carol.send("PART #chan", "JOIN #chan")
        self.assertEqual(carol.commands()[-1], numerics.ERR_INVITEONLYCHAN)

    def test_invitation_passes_the_limit_but_not_the_key(self) -> None:
        alice, _bob = self.harness.channel_of("alice", "bob")
        carol, dave = self.harness.register("carol"), self.harness.register("dave")
        alice.send("MODE #chan +kl secret 2", "INVITE carol #chan")
        carol.raw()
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands(), [numerics.ERR_BADCHANNELKEY])
        carol.send("JOIN #chan secret")
        self.assertEqual(carol.commands()[0], "JOIN")
        dave.send("JOIN #chan secret")
        self.assertEqual(dave.commands(), [numerics.ERR_CHANNELISFULL])


class MalformedParameterTests(TestCase):
    """Input echoed in a reply never breaks the reply's own parameters."""

    def test_names_from_trailing_parameters(self) -> None:
        (alice,) = self.harness_channel()
        alice.send(
            "TOPIC :a b",
            "TOPIC ::x",
            "NAMES :#a b",
            "KICK #chan :x y",
            "INVITE alice :",
            "MODE #chan :+i Y",
            "MODE :",
        )
        self.assertEqual(
            alice.lines(),
            [
                ":irc.test 403 alice * :No such channel",
                ":irc.test 403 alice * :No such channel",
                ":irc.test 366 alice * :End of /NAMES list",
                ":irc.test 401 alice * :No such nick/channel",
                ":irc.test 403 alice * :No such channel",
                ":irc.test 472 alice * :is unknown mode char to me",
                ":irc.test 472 alice Y :is unknown mode char to me",
                f"{ALICE} MODE #chan +i",
                ":irc.test 401 alice * :No such nick/channel",
            ],
        )

    def harness_channel(self) -> list[FakeClient]:
        return Harness().channel_of("alice")


class PartTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_part_with_reason(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        bob.send("PART #chan :gone home")
        self.assertEqual(alice.lines(), [f"{BOB} PART #chan :gone home"])
        self.assertEqual(bob.lines(), [f"{BOB} PART #chan :gone home"])
        self.assertEqual(bob.conn.channels, {})

    def test_long_reason_fits_the_line(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        bob.send("PART #chan :" + "r" * 490)
        self.assertEqual(alice.raw(), f"{BOB} PART #chan :{'r' * 478}\r\n".encode())

    def test_part_errors(self) -> None:
        alice = self.harness.register("alice")
        self.harness.register("bob").send("JOIN #bobs")
        alice.send("PART #nowhere,#bobs")
        self.assertEqual(
            alice.lines(),
            [
                ":irc.test 403 alice #nowhere :No such channel",
                ":irc.test 442 alice #bobs :You're not on that channel",
            ],
        )

    def test_last_part_drops_channel(self) -> None:
        (alice,) = self.harness.channel_of("alice")
        alice.send("PART #chan")
        self.assertEqual(self.harness.server.channels, {})


class NamesTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_names_of_several_channels(self) -> None:
        _alice, bob = self.harness.channel_of("alice", "bob")
        bob.send("NAMES #chan,#none")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 353 bob = #chan :@alice bob",
                ":irc.test 366 bob #chan,#none :End of /NAMES list",
            ],
        )

    def test_names_of_two_channels_ends_once(self) -> None:
        alice, _bob = self.harness.channel_of("alice", "bob")
        alice.send("JOIN #two")
        alice.lines()
        alice.send("NAMES #chan,#two")
        self.assertEqual(
            alice.lines(),
            [
                ":irc.test 353 alice = #chan :@alice bob",
                ":irc.test 353 alice = #two @alice",
                ":irc.test 366 alice #chan,#two :End of /NAMES list",
            ],
        )

    def test_names_without_params(self) -> None:
        alice = self.harness.register("alice")
        alice.send("NAMES")
        self.assertEqual(alice.lines(), [":irc.test 366 alice * :End of /NAMES list"])

    def test_secret_channel_hidden_from_outsiders(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("MODE #chan +s")
        carol = self.harness.register("carol")
        carol.send("NAMES #chan")
        self.assertEqual(
            carol.lines(), [":irc.test 366 carol #chan :End of /NAMES list"]
        )
        bob.raw()
        bob.send("NAMES #chan")
        self.assertEqual(bob.lines()[0], ":irc.test 353 bob @ #chan :@alice bob")

    def test_invisible_users_hidden_from_outsiders(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        bob.send("MODE bob +i")
        carol = self.harness.register("carol")
        carol.send("NAMES #chan")
        self.assertEqual(carol.lines()[0], ":irc.test 353 carol = #chan @alice")
        alice.send("NAMES #chan")
        self.assertEqual(alice.lines()[0], ":irc.test 353 alice = #chan :@alice bob")

    def test_multi_prefix_and_userhost_in_names(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("MODE #chan +v alice")
        bob.raw()
        bob.conn.set_cap("multi-prefix", True)
        bob.send("NAMES #chan")
        self.assertEqual(bob.lines()[0], ":irc.test 353 bob = #chan :@+alice bob")
        bob.conn.set_cap("userhost-in-names", True)
        bob.send("NAMES #chan")
        self.assertEqual(
            bob.lines()[0],
            ":irc.test 353 bob = #chan :@+alice!~alice@127.0.0.1 bob!~bob@127.0.0.1",
        )
        bob.conn.set_cap("multi-prefix", False)
        bob.send("NAMES #chan")
        self.assertEqual(
            bob.lines()[0],
            ":irc.test 353 bob = #chan :@alice!~alice@127.0.0.1 bob!~bob@127.0.0.1",
        )

    def test_long_names_split_under_512_bytes(self) -> None:
        nicks = [f"user{i:03d}" + "x" * 20 for i in range(60)]
        clients = self.harness.channel_of(*nicks)
        watcher = clients[0]
        watcher.conn.set_cap("userhost-in-names", True)
        watcher.send("NAMES #chan")
        raw = watcher.raw()
        lines = raw.split(b"\r\n")[:-1]
        self.assertGreater(len(lines), 3)
        for line in lines:
            self.assertLessEqual(len(line) + 2, 512)
        names: list[str] = []
        for line in lines[:-1]:
            text = line.decode()
            self.assertIn(" 353 ", text)
            names.extend(text.split(" :", 1)[1].split())
        self.assertEqual([n.lstrip("@").split("!")[0] for n in names], nicks)


class TopicTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_query_without_topic(self) -> None:
        (alice,) = self.harness.channel_of("alice")
        alice.send("TOPIC #chan")
        self.assertEqual(alice.lines(), [":irc.test 331 alice #chan :No topic is set"])

    def test_set_broadcast_and_query(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        self.harness.clock.advance(60)
        alice.send("TOPIC #chan :Hello there")
        self.assertEqual(alice.lines(), [f"{ALICE} TOPIC #chan :Hello there"])
        self.assertEqual(bob.lines(), [f"{ALICE} TOPIC #chan :Hello there"])
        bob.send("TOPIC #CHAN")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 332 bob #chan :Hello there",
                ":irc.test 333 bob #chan alice 60",
            ],
        )

    def test_clear_topic(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("TOPIC #chan :x", "TOPIC #chan :")
        self.assertEqual(bob.lines()[-1], f"{ALICE} TOPIC #chan :")
        bob.send("TOPIC #chan")
        self.assertEqual(bob.commands(), [numerics.RPL_NOTOPIC])

    def test_protected_topic_needs_operator(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        bob.send("TOPIC #chan :mine")
        self.assertEqual(
            bob.lines(), [":irc.test 482 bob #chan :You're not channel operator"]
        )
        alice.send("MODE #chan -t")
        bob.raw()
        bob.send("TOPIC #chan :mine")
        self.assertEqual(bob.lines(), [f"{BOB} TOPIC #chan :mine"])

    def test_errors(self) -> None:
        (_alice,) = self.harness.channel_of("alice")
        bob = self.harness.register("bob")
        bob.send("TOPIC #nope", "TOPIC #chan :x", "TOPIC")
        self.assertEqual(
            bob.lines(),
            [
                ":irc.test 403 bob #nope :No such channel",
                ":irc.test 442 bob #chan :You're not on that channel",
                ":irc.test 461 bob TOPIC :Not enough parameters",
            ],
        )

    def test_outsider_sees_topic_unless_secret(self) -> None:
        (alice,) = self.harness.channel_of("alice")
        alice.send("TOPIC #chan :public")
        bob = self.harness.register("bob")
        bob.send("TOPIC #chan")
        self.assertEqual(
            bob.commands(), [numerics.RPL_TOPIC, numerics.RPL_TOPICWHOTIME]
        )
        alice.send("MODE #chan +s")
        bob.send("TOPIC #chan")
        self.assertEqual(bob.commands(), [numerics.ERR_NOTONCHANNEL])

    def test_topic_truncated_to_topiclen(self) -> None:
        limits = replace(Limits(), topic_length=10)
        self.harness = Harness(limits=limits)
        (alice,) = self.harness.channel_of("alice")
        alice.send("TOPIC #chan :" + "é" * 8)
        self.assertEqual(self.harness.server.channels["#chan"].topic, "é" * 5)

    def test_long_topic_fits_the_line(self) -> None:
        self.harness = Harness(limits=replace(Limits(), topic_length=1000))
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("TOPIC #chan :" + "t" * 480)
        self.assertEqual(len(bob.raw()), 512)
        self.assertEqual(self.harness.server.channels["#chan"].topic, "t" * 473)

    def test_truncate_utf8(self) -> None:
        self.assertEqual(truncate_utf8("abc", 3), "abc")
        self.assertEqual(truncate_utf8("abcd", 3), "abc")
        self.assertEqual(truncate_utf8("aé", 2), "a")


class ListTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice = self.harness.register("alice")
        self.bob = self.harness.register("bob")
        self.alice.send("JOIN #one,#two,#three", "TOPIC #two :second")
        self.bob.send("JOIN #two,#three,#bob")
        self.alice.raw()
        self.bob.raw()

    def listed(self, client: FakeClient) -> list[tuple[str, ...]]:
        messages = client.messages()
        self.assertEqual(messages[0].command, numerics.RPL_LISTSTART)
        self.assertEqual(messages[-1].command, numerics.RPL_LISTEND)
        return [m.params[1:] for m in messages[1:-1]]

    def test_full_list(self) -> None:
        self.alice.send("LIST")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 321 alice Channel :Users  Name",
                ":irc.test 322 alice #one 1 :",
                ":irc.test 322 alice #two 2 second",
                ":irc.test 322 alice #three 2 :",
                ":irc.test 322 alice #bob 1 :",
                ":irc.test 323 alice :End of /LIST",
            ],
        )

    def test_named_channels(self) -> None:
        self.alice.send("LIST #TWO,#none,#one")
        self.assertEqual(
            self.listed(self.alice), [("#two", "2", "second"), ("#one", "1", "")]
        )

    def test_patterns(self) -> None:
        self.alice.send("LIST #t*")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#two", "#three"])
        self.alice.send("LIST #?o?,#one")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#bob", "#one"])

    def test_user_count_conditions(self) -> None:
        self.alice.send("LIST >1")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#two", "#three"])
        self.alice.send("LIST <2")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#one", "#bob"])
        self.alice.send("LIST #t* <3,>1")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#two", "#three"])
        self.alice.send("LIST >x")
        self.assertEqual(len(self.listed(self.alice)), 4)

    def test_non_matching_masks(self) -> None:
        self.assertIn("ELIST=CMNTU", self.harness.server.isupport())
        self.alice.send("LIST !#t*")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#one", "#bob"])
        self.alice.send("LIST #t*,!*ee")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#two"])

    def test_creation_time_conditions(self) -> None:
        self.harness.clock.advance(180)
        self.alice.send("JOIN #new")
        self.harness.clock.advance(60)
        self.alice.raw()
        self.alice.send("LIST C>2")
        self.assertEqual(
            [c for c, _, _ in self.listed(self.alice)],
            ["#one", "#two", "#three", "#bob"],
        )
        self.alice.send("LIST C<2")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#new"])
        self.alice.send("LIST C<0")
        self.assertEqual(self.listed(self.alice), [])
        self.alice.send("LIST C<10,<2")
        self.assertEqual(
            [c for c, _, _ in self.listed(self.alice)], ["#one", "#bob", "#new"]
        )

    def test_topic_time_conditions(self) -> None:
        self.harness.clock.advance(180)
        self.alice.send("TOPIC #one :later")
        self.harness.clock.advance(60)
        self.alice.raw()
        self.alice.send("LIST T>2")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#two"])
        self.alice.send("LIST T<2")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#one"])
        self.alice.send("LIST T>0")
        self.assertEqual([c for c, _, _ in self.listed(self.alice)], ["#one", "#two"])
        self.alice.send("LIST T>x,C<")
        self.assertEqual(len(self.listed(self.alice)), 4, "malformed: ignored")

    def test_secret_channels_only_for_members(self) -> None:
        self.bob.send("MODE #bob +s")
        self.alice.send("LIST")
        self.assertNotIn("#bob", [c for c, _, _ in self.listed(self.alice)])
        self.alice.send("LIST #bob")
        self.assertEqual(self.listed(self.alice), [])
        self.bob.raw()
        self.bob.send("LIST #bob")
        self.assertEqual(self.listed(self.bob), [("#bob", "1", "")])


class KickTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()

    def test_kick_broadcasts_then_removes(self) -> None:
        alice, bob, carol = self.harness.channel_of("alice", "bob", "carol")
        alice.send("KICK #chan bob :behave")
        line = f"{ALICE} KICK #chan bob :behave"
        self.assertEqual(alice.lines(), [line])
        self.assertEqual(bob.lines(), [line])
        self.assertEqual(carol.lines(), [line])
        self.assertEqual(bob.conn.channels, {})
        alice.send("PRIVMSG #chan :hi")
        self.assertEqual(bob.lines(), [])

    def test_default_reason_and_kicklen(self) -> None:
        self.harness = Harness(limits=replace(Limits(), kick_length=5))
        alice, _bob, _carol = self.harness.channel_of("alice", "bob", "carol")
        alice.send("KICK #chan bob", "KICK #chan carol :abcdefgh")
        self.assertEqual(
            alice.lines(),
            [f"{ALICE} KICK #chan bob :alice", f"{ALICE} KICK #chan carol :abcde"],
        )

    def test_long_reason_fits_the_line(self) -> None:
        self.harness = Harness(limits=replace(Limits(), kick_length=1000))
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("KICK #chan bob :" + "k" * 480)
        self.assertEqual(len(bob.raw()), 512)

    def test_several_nicks(self) -> None:
        alice, _bob, _carol = self.harness.channel_of("alice", "bob", "carol")
        alice.send("KICK #chan bob,carol,nobody :out")
        self.assertEqual(
            alice.lines(),
            [
                f"{ALICE} KICK #chan bob :out",
                f"{ALICE} KICK #chan carol :out",
                ":irc.test 401 alice nobody :No such nick/channel",
            ],
        )

    def test_pairs_of_channels_and_nicks(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        alice.send("JOIN #two")
        bob.send("JOIN #two")
        alice.raw()
        alice.send("KICK #chan,#two bob,bob")
        self.assertEqual(
            alice.lines(),
            [f"{ALICE} KICK #chan bob :alice", f"{ALICE} KICK #two bob :alice"],
        )
        alice.send("KICK #chan,#two bob")
        self.assertEqual(alice.commands(), [numerics.ERR_NEEDMOREPARAMS])

    def test_targets_capped(self) -> None:
        nicks = ["alice", "b1", "b2", "b3", "b4", "b5"]
        clients = self.harness.channel_of(*nicks)
        clients[0].send("KICK #chan " + ",".join(nicks[1:]))
        self.assertEqual(clients[0].commands(), ["KICK"] * 4)
        self.assertIn(clients[5].conn, self.harness.server.channels["#chan"].members)

    def test_errors(self) -> None:
        alice, bob = self.harness.channel_of("alice", "bob")
        carol = self.harness.register("carol")
        carol.send("KICK #none bob", "KICK #chan bob", "KICK #chan")
        bob.send("KICK #chan alice")
        alice.send("KICK #chan carol")
        self.assertEqual(
            carol.lines(),
            [
                ":irc.test 403 carol #none :No such channel",
                ":irc.test 442 carol #chan :You're not on that channel",
                ":irc.test 461 carol KICK :Not enough parameters",
            ],
        )
        self.assertEqual(
            bob.lines(), [":irc.test 482 bob #chan :You're not channel operator"]
        )
        self.assertEqual(
            alice.lines(),
            [":irc.test 441 alice carol #chan :They aren't on that channel"],
        )


class InviteTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob = self.harness.channel_of("alice", "bob")
        self.carol = self.harness.register("carol")

    def test_invite(self) -> None:
        self.bob.send("INVITE carol #chan")
        self.assertEqual(self.bob.lines(), [":irc.test 341 bob carol #chan"])
        self.assertEqual(self.carol.lines(), [f"{BOB} INVITE carol #chan"])
        self.assertEqual(self.alice.lines(), [])

    def test_invite_reports_away(self) -> None:
        self.carol.conn.away = "lunch"
        self.bob.send("INVITE carol #chan")
        self.assertEqual(
            self.bob.lines(),
            [":irc.test 341 bob carol #chan", ":irc.test 301 bob carol lunch"],
        )

    def test_errors(self) -> None:
        self.carol.send(
            "INVITE nobody #chan",
            "INVITE bob #none",
            "INVITE bob #chan",
            "INVITE bob",
        )
        self.alice.send("MODE #chan +i")
        self.bob.raw()
        self.bob.send("INVITE carol #chan")
        self.assertEqual(
            self.carol.lines(),
            [
                ":irc.test 401 carol nobody :No such nick/channel",
                ":irc.test 403 carol #none :No such channel",
                ":irc.test 442 carol #chan :You're not on that channel",
                ":irc.test 461 carol INVITE :Not enough parameters",
            ],
        )
        self.assertEqual(
            self.bob.lines(), [":irc.test 482 bob #chan :You're not channel operator"]
        )

    def test_already_on_channel(self) -> None:
        self.alice.send("INVITE bob #chan")
        self.assertEqual(
            self.alice.lines(),
            [":irc.test 443 alice bob #chan :is already on channel"],
        )

    def test_invite_list(self) -> None:
        self.alice.send("JOIN #two", "INVITE carol #two", "INVITE carol #chan")
        self.carol.raw()
        self.carol.send("INVITE")
        self.assertEqual(
            sorted(self.carol.lines()),
            [
                ":irc.test 336 carol #chan",
                ":irc.test 336 carol #two",
                ":irc.test 337 carol :End of /INVITE list",
            ],
        )
        self.carol.send("JOIN #two")
        self.carol.raw()
        self.carol.send("INVITE")
        self.assertEqual(
            self.carol.lines(),
            [":irc.test 336 carol #chan", ":irc.test 337 carol :End of /INVITE list"],
        )

    def test_invitation_follows_nick_change(self) -> None:
        self.alice.send("MODE #chan +i", "INVITE carol #chan")
        self.carol.send("NICK carla", "JOIN #chan")
        self.assertIn("JOIN", self.carol.commands())
