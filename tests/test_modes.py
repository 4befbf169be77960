"""Tests for MODE: channel modes, ban lists, user modes, and chat.modes."""

from __future__ import annotations

from dataclasses import replace

from twisted.trial.unittest import TestCase

from chat import numerics
from chat.config import Limits
from chat.modes import (
    ModeChange,
    ModeRequest,
    format_changes,
    normalize_list_mask,
    normalize_mask,
    parse_channel_modes,
    parse_limit,
    parse_user_modes,
    valid_key,
)
from tests.accounts_support import PASSWORD, account_harness, make_account
from tests.support import Harness

ALICE = ":alice!~alice@127.0.0.1"
BOB = ":bob!~bob@127.0.0.1"


class ParseTests(TestCase):
    def test_channel_modes_take_parameters_by_type(self) -> None:
        requests, unknown = parse_channel_modes(
            "+bkl-lk+ov-b+imZ", ["m1", "key", "5", "bob", "carol", "m2"]
        )
        self.assertEqual(
            requests,
            [
                ModeRequest(True, "b", "m1"),
                ModeRequest(True, "k", "key"),
                ModeRequest(True, "l", "5"),
                ModeRequest(False, "l"),
                ModeRequest(False, "k", "bob"),
                ModeRequest(True, "o", "carol"),
                ModeRequest(True, "v", "m2"),
                ModeRequest(False, "b"),
                ModeRequest(True, "i"),
                ModeRequest(True, "m"),
            ],
        )
        self.assertEqual(unknown, ["Z"])

    def test_missing_sign_means_adding(self) -> None:
        requests, _ = parse_channel_modes("b", [])
        self.assertEqual(requests, [ModeRequest(True, "b")])
        self.assertTrue(requests[0].is_list_query)

    def test_unknown_letters_reported_once(self) -> None:
        _, unknown = parse_channel_modes("+XYX-Y", [])
        self.assertEqual(unknown, ["X", "Y"])

    def test_user_modes(self) -> None:
        requests, unknown = parse_user_modes("+iw-o+x")
        self.assertEqual(
            requests,
            [
                ModeRequest(True, "i"),
                ModeRequest(True, "w"),
                ModeRequest(False, "o"),
            ],
        )
        self.assertEqual(unknown, ["x"])

    def test_format_changes_groups_signs(self) -> None:
        changes = [
            ModeChange(True, "o", "a"),
            ModeChange(True, "n"),
            ModeChange(False, "b", "x!*@*"),
            ModeChange(False, "l"),
            ModeChange(True, "v", "b"),
        ]
        self.assertEqual(format_changes(changes), ("+on-bl+v", "a", "x!*@*", "b"))

    def test_normalize_mask(self) -> None:
        cases = {
            "nick": "nick!*@*",
            "user@host": "*!user@host",
            "host.example": "*!*@host.example",
            "2001:db8::1": "*!*@2001:db8::1",
            "nick!user": "nick!user@*",
            "n!u@h": "n!u@h",
            "!@": "*!*@*",
            "*": "*!*@*",
        }
        for mask, expected in cases.items():
            self.assertEqual(normalize_mask(mask), expected, mask)
        for bad in ("", ":x", "a!b!c", "a@b@c", "x" * 200, "a\x01b"):
            self.assertIsNone(normalize_mask(bad), bad)

    def test_valid_key(self) -> None:
        self.assertTrue(valid_key("s3cret"))
        for bad in ("", "a b", "a,b", "a:b", "x" * 24, "a\x02b"):
            self.assertFalse(valid_key(bad), bad)

    def test_parse_limit(self) -> None:
        self.assertEqual(parse_limit("10"), 10)
        for bad in ("0", "-1", "x", "", "١٢", "99999999999"):
            self.assertIsNone(parse_limit(bad), bad)


class ChannelModeTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob = self.harness.channel_of("alice", "bob")
        self.channel = self.harness.server.channels["#chan"]

    def test_query(self) -> None:
        self.harness.clock.advance(42)
        self.alice.send("JOIN #later", "MODE #later +kl key 9")
        self.alice.raw()
        self.alice.send("MODE #later")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 324 alice #later +ntkl key 9",
                ":irc.test 329 alice #later 42",
            ],
        )

    def test_key_hidden_from_non_members(self) -> None:
        self.alice.send("MODE #chan +k key")
        carol = self.harness.register("carol")
        carol.send("MODE #chan")
        self.assertEqual(carol.lines()[0], ":irc.test 324 carol #chan +ntk *")

    def test_no_such_channel(self) -> None:
        self.alice.send("MODE #none", "MODE #none +i", "MODE")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 403 alice #none :No such channel",
                ":irc.test 403 alice #none :No such channel",
                ":irc.test 461 alice MODE :Not enough parameters",
            ],
        )

    def test_flags_broadcast_once(self) -> None:
        self.alice.send("MODE #chan +ims-n")
        line = f"{ALICE} MODE #chan +ims-n"
        self.assertEqual(self.alice.lines(), [line])
        self.assertEqual(self.bob.lines(), [line])
        self.assertEqual(self.channel.flags, {"i", "m", "s", "t"})

    def test_broadcast_is_a_relay(self) -> None:
        self.bob.conn.set_cap("server-time", True)
        self.harness.clock.advance(3)
        self.alice.send("MODE #chan +m")
        self.assertEqual(
            self.bob.lines(), [f"@time=1970-01-01T00:00:03.000Z {ALICE} MODE #chan +m"]
        )
        self.assertEqual(self.alice.lines(), [f"{ALICE} MODE #chan +m"])

    def test_no_change_no_broadcast(self) -> None:
        self.alice.send("MODE #chan +nt-i")
        self.assertEqual(self.alice.lines(), [])
        self.assertEqual(self.bob.lines(), [])

    def test_only_applied_changes_are_broadcast(self) -> None:
        self.alice.send("MODE #chan +tmo-v nobody bob")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 401 alice nobody :No such nick/channel",
                f"{ALICE} MODE #chan +m",
            ],
        )

    def test_unknown_mode(self) -> None:
        self.alice.send("MODE #chan +Xi")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 472 alice X :is unknown mode char to me",
                f"{ALICE} MODE #chan +i",
            ],
        )

    def test_needs_operator(self) -> None:
        self.bob.send("MODE #chan +i", "MODE #chan +o bob")
        self.assertEqual(
            self.bob.lines(),
            [":irc.test 482 bob #chan :You're not channel operator"] * 2,
        )
        self.assertEqual(self.alice.lines(), [])
        self.assertNotIn("i", self.channel.flags)

    def test_op_and_voice(self) -> None:
        self.alice.send("MODE #chan +ov BOB bob")
        self.assertEqual(self.bob.lines(), [f"{ALICE} MODE #chan +ov bob bob"])
        self.assertEqual(self.channel.members[self.bob.conn], "ov")
        self.alice.send("MODE #chan -o bob")
        self.assertEqual(self.channel.members[self.bob.conn], "v")

    def test_op_errors(self) -> None:
        carol = self.harness.register("carol")
        self.alice.send("MODE #chan +o carol", "MODE #chan +v ghost", "MODE #chan +o")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 441 alice carol #chan :They aren't on that channel",
                ":irc.test 401 alice ghost :No such nick/channel",
            ],
        )
        self.assertEqual(carol.lines(), [])

    def test_key(self) -> None:
        self.alice.send("MODE #chan +k secret")
        self.assertEqual(self.bob.lines(), [f"{ALICE} MODE #chan +k secret"])
        self.assertEqual(self.channel.key, "secret")
        self.alice.send("MODE #chan +k secret", "MODE #chan +k other")
        self.assertEqual(
            self.alice.lines(),
            [
                f"{ALICE} MODE #chan +k secret",
                ":irc.test 467 alice #chan :Channel key already set",
            ],
        )
        self.alice.send("MODE #chan -k")
        self.assertEqual(self.bob.lines(), [f"{ALICE} MODE #chan -k *"])
        self.assertIsNone(self.channel.key)
        self.alice.send("MODE #chan -k anything")
        self.assertEqual(self.alice.lines(), [f"{ALICE} MODE #chan -k *"])

    def test_bad_key(self) -> None:
        self.alice.send("MODE #chan +k a,b", "MODE #chan +k")
        self.assertEqual(
            self.alice.lines(), [":irc.test 525 alice #chan :Key is not well-formed"]
        )
        self.assertIsNone(self.channel.key)

    def test_limit(self) -> None:
        self.alice.send("MODE #chan +l 010")
        self.assertEqual(self.bob.lines(), [f"{ALICE} MODE #chan +l 10"])
        self.alice.send("MODE #chan +l zero", "MODE #chan +l 0", "MODE #chan -l")
        self.assertEqual(
            self.alice.lines(),
            [
                f"{ALICE} MODE #chan +l 10",
                ":irc.test 696 alice #chan l zero "
                ":Invalid limit: a positive number is needed",
                ":irc.test 696 alice #chan l 0 "
                ":Invalid limit: a positive number is needed",
                f"{ALICE} MODE #chan -l",
            ],
        )
        self.assertIsNone(self.channel.limit)

    def test_param_modes_limited_per_command(self) -> None:
        self.harness.register("carol").send("JOIN #chan")
        self.alice.raw()
        self.alice.send("MODE #chan +bbbbbi a b c d e")
        self.assertEqual(
            self.alice.lines(),
            [f"{ALICE} MODE #chan +bbbbi a!*@* b!*@* c!*@* d!*@*"],
        )

    def test_mode_line_stays_under_512_bytes(self) -> None:
        self.harness = Harness(limits=replace(Limits(), modes_per_command=20))
        (alice,) = self.harness.channel_of("alice")
        masks = [f"{i:02d}" + "x" * 112 + "@h" for i in range(4)]
        alice.send("MODE #chan +bbbb " + " ".join(masks))
        raw = alice.raw()
        self.assertLessEqual(len(raw), 512)
        self.assertEqual(raw.count(b"\r\n"), 1)
        applied = raw.decode().split()[4:]
        channel = self.harness.server.channels["#chan"]
        self.assertEqual([entry.mask for entry in channel.bans], applied)
        self.assertEqual(len(applied), 3)


class BanTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice, self.bob = self.harness.channel_of("alice", "bob")
        self.channel = self.harness.server.channels["#chan"]

    def test_add_list_remove(self) -> None:
        self.harness.clock.advance(7)
        self.alice.send("MODE #chan +bb troll *@bad.example")
        self.assertEqual(
            self.bob.lines(),
            [f"{ALICE} MODE #chan +bb troll!*@* *!*@bad.example"],
        )
        self.bob.send("MODE #chan b")
        self.assertEqual(
            self.bob.lines(),
            [
                f":irc.test 367 bob #chan troll!*@* {ALICE[1:]} 7",
                f":irc.test 367 bob #chan *!*@bad.example {ALICE[1:]} 7",
                ":irc.test 368 bob #chan :End of channel ban list",
            ],
        )
        self.alice.send("MODE #chan -b TROLL!*@*", "MODE #chan -b troll")
        self.assertEqual(self.bob.lines(), [f"{ALICE} MODE #chan -b troll!*@*"])
        self.assertEqual([b.mask for b in self.channel.bans], ["*!*@bad.example"])

    def test_plus_b_without_mask_lists(self) -> None:
        self.alice.send("MODE #chan +b")
        self.assertEqual(
            self.alice.lines(), [":irc.test 368 alice #chan :End of channel ban list"]
        )

    def test_duplicate_ban_ignored(self) -> None:
        self.alice.send("MODE #chan +b x", "MODE #chan +b X!*@*")
        self.assertEqual(self.alice.lines(), [f"{ALICE} MODE #chan +b x!*@*"])

    def test_ban_list_full(self) -> None:
        self.harness = Harness(limits=replace(Limits(), max_list_entries=2))
        (alice,) = self.harness.channel_of("alice")
        alice.send("MODE #chan +bbb a b c")
        self.assertEqual(
            alice.lines(),
            [
                ":irc.test 478 alice #chan b :Channel ban list is full",
                f"{ALICE} MODE #chan +bb a!*@* b!*@*",
            ],
        )

    def test_invalid_mask(self) -> None:
        self.alice.send("MODE #chan +b a!b!c")
        self.assertEqual(
            self.alice.lines(),
            [":irc.test 696 alice #chan b a!b!c :Invalid ban mask"],
        )

    def test_ban_keeps_member_from_speaking_and_rejoining(self) -> None:
        self.alice.send("MODE #chan +b bob")
        self.bob.raw()
        self.bob.send("PRIVMSG #chan :hello")
        self.assertEqual(self.bob.commands(), [numerics.ERR_CANNOTSENDTOCHAN])
        self.bob.send("PART #chan", "JOIN #chan")
        self.assertEqual(self.bob.commands()[-1], numerics.ERR_BANNEDFROMCHAN)

    def test_secret_channel_ban_list_hidden(self) -> None:
        self.alice.send("MODE #chan +sb troll")
        carol = self.harness.register("carol")
        carol.send("MODE #chan b")
        self.assertEqual(
            carol.lines(), [":irc.test 368 carol #chan :End of channel ban list"]
        )


class UserModeTests(TestCase):
    def setUp(self) -> None:
        self.harness = Harness()
        self.alice = self.harness.register("alice")

    def test_query_and_set(self) -> None:
        self.alice.send("MODE alice")
        self.assertEqual(self.alice.lines(), [":irc.test 221 alice +"])
        self.alice.send("MODE Alice +wi", "MODE alice")
        self.assertEqual(
            self.alice.lines(),
            [":alice MODE alice :+wi", ":irc.test 221 alice +iw"],
        )
        self.alice.send("MODE alice -w+i")
        self.assertEqual(self.alice.lines(), [":alice MODE alice :-w"])

    def test_operator_only_removed(self) -> None:
        self.alice.send("MODE alice +o")
        self.assertEqual(self.alice.lines(), [])
        self.assertNotIn("o", self.alice.conn.modes)
        self.alice.conn.modes.add("o")
        self.alice.send("MODE alice -o")
        self.assertEqual(self.alice.lines(), [":alice MODE alice :-o"])
        self.assertNotIn("o", self.alice.conn.modes)

    def test_unknown_flag_after_applying(self) -> None:
        self.alice.send("MODE alice +xi")
        self.assertEqual(
            self.alice.lines(),
            [":alice MODE alice :+i", ":irc.test 501 alice :Unknown MODE flag"],
        )

    def test_other_users(self) -> None:
        self.harness.register("bob")
        self.alice.send("MODE bob", "MODE bob +i", "MODE ghost +i")
        self.assertEqual(
            self.alice.lines(),
            [
                ":irc.test 502 alice :Cant change mode for other users",
                ":irc.test 502 alice :Cant change mode for other users",
                ":irc.test 401 alice ghost :No such nick/channel",
            ],
        )


class ExceptionAndExtbanTests(TestCase):
    """``+e``, ``+I``, ``+C`` and the extended bans ``a:`` and ``m:``."""

    def setUp(self) -> None:
        self.harness = account_harness()
        self.alice, self.bob = self.harness.channel_of("alice", "bob")
        self.channel = self.harness.server.channels["#chan"]

    def test_ban_exception_lets_a_banned_user_join(self) -> None:
        carol = self.harness.register("Carol")
        self.alice.send("MODE #chan +b ca*!*@*")
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands(), [numerics.ERR_BANNEDFROMCHAN])
        self.alice.send("MODE #chan +e *ol!*@*")
        self.assertEqual(self.alice.lines()[-1], f"{ALICE} MODE #chan +e *ol!*@*")
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands()[0], "JOIN")

    def test_invite_exception_passes_invite_only(self) -> None:
        carol = self.harness.register("carol")
        self.alice.send("MODE #chan +i")
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands(), [numerics.ERR_INVITEONLYCHAN])
        self.alice.send("MODE #chan +I carol")
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands()[0], "JOIN")

    def test_lists_are_shown_with_their_numerics(self) -> None:
        self.harness.clock.advance(3)
        self.alice.send("MODE #chan +eI a b")
        self.bob.raw()
        self.bob.send("MODE #chan e", "MODE #chan +I")
        self.assertEqual(
            self.bob.lines(),
            [
                f":irc.test 348 bob #chan a!*@* {ALICE[1:]} 3",
                ":irc.test 349 bob #chan :End of channel exception list",
                f":irc.test 346 bob #chan b!*@* {ALICE[1:]} 3",
                ":irc.test 347 bob #chan :End of channel invite exception list",
            ],
        )
        self.alice.send("MODE #chan -e A!*@*")
        self.assertEqual(self.channel.exceptions, [])

    def test_mute_keeps_a_member_quiet_but_in(self) -> None:
        self.alice.send("MODE #chan +b m:BOB")
        self.assertEqual(self.alice.lines(), [f"{ALICE} MODE #chan +b m:BOB!*@*"])
        self.bob.raw()
        self.bob.send("PRIVMSG #chan :hi")
        self.assertEqual(self.bob.commands(), [numerics.ERR_CANNOTSENDTOCHAN])
        self.assertEqual(self.alice.lines(), [])
        self.bob.send("PART #chan", "JOIN #chan")
        self.assertIn("JOIN", self.bob.commands())
        self.alice.send("MODE #chan +v bob")
        self.bob.raw()
        self.bob.send("PRIVMSG #chan :voiced")
        self.assertEqual(self.bob.commands(), [])

    def test_mute_exception(self) -> None:
        self.alice.send("MODE #chan +b m:bob!*@*", "MODE #chan +e m:*!~bob@*")
        self.bob.raw()
        self.bob.send("PRIVMSG #chan :hi")
        self.assertEqual(self.bob.commands(), [])
        self.assertEqual(self.alice.lines()[-1], f"{BOB} PRIVMSG #chan :hi")

    def test_account_extban_matches_accounts_not_nicks(self) -> None:
        make_account(self.harness, "carol")
        self.alice.send("MODE #chan +b a:carol")
        carol = self.harness.register("carol")
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands(), ["JOIN", "353", "366"], "not logged in")
        carol.send("PART #chan", f"NS IDENTIFY {PASSWORD}")
        carol.raw()
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands(), [numerics.ERR_BANNEDFROMCHAN])
        self.alice.send("MODE #chan +e a:CAROL")
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands()[0], "JOIN")

    def test_account_invite_exception(self) -> None:
        make_account(self.harness, "carol")
        self.alice.send("MODE #chan +iI a:carol")
        carol = self.harness.register("carol")
        carol.send(f"NS IDENTIFY {PASSWORD}")
        carol.raw()
        carol.send("JOIN #chan")
        self.assertEqual(carol.commands()[0], "JOIN")

    def test_no_ctcp_but_action(self) -> None:
        self.alice.send("MODE #chan +C")
        self.bob.raw()
        self.alice.raw()
        self.bob.send("PRIVMSG #chan :\x01ACTION waves\x01")
        self.assertEqual(self.alice.commands(), ["PRIVMSG"])
        self.bob.send("PRIVMSG #chan :\x01VERSION\x01", "NOTICE #chan :\x01PING 1\x01")
        self.assertEqual(
            self.bob.lines(), [":irc.test 404 bob #chan :Cannot send to channel"]
        )
        self.assertEqual(self.alice.lines(), [])

    def test_extban_masks_are_checked(self) -> None:
        self.assertEqual(normalize_list_mask("m:bob"), "m:bob!*@*")
        self.assertEqual(normalize_list_mask("m:a:acc*"), "m:a:acc*")
        self.assertEqual(normalize_list_mask("a:acc"), "a:acc")
        self.assertEqual(normalize_list_mask("*!*@::1"), "*!*@::1")
        self.assertIsNone(normalize_list_mask("a:"))
        self.assertIsNone(normalize_list_mask("m:m:bob"))
        self.alice.send("MODE #chan +b a:")
        self.assertEqual(self.alice.commands(), [numerics.ERR_INVALIDMODEPARAM])

    def test_isupport_advertises_them(self) -> None:
        tokens = self.harness.server.isupport()
        for token in (
            "CHANMODES=beI,k,l,Cimnst",
            "EXCEPTS=e",
            "INVEX=I",
            "EXTBAN=,am",
            "ACCOUNTEXTBAN=a",
        ):
            self.assertIn(token, tokens)
