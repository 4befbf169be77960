"""Races between real node processes: TLS, one Redis, one PostgreSQL.

Each race writes the competing lines to their nodes back to back, then
reads: nick claims and changes (rfc1459 case folding), account
registrations, conflicting channel changes, and messages sent at once from
several nodes.  `tests.test_cluster` has the same guarantees with
in-process nodes.
"""

from __future__ import annotations

from pathlib import Path

from chat.message import Message
from tests.accounts_support import PASSWORD
from tests.cluster_support import ClusterProcessCase
from tests.e2e_support import LineClient, connect_tls, is_command
from tests.redis_support import start_redis
from tests.services_support import postgres_database
from tests.test_cluster_faults import answers, channel_view, eventually, log

#: A channel as one node shows it: `channel_view` and the ban masks.
Outcome = tuple[object, list[str]]
#: The commands that change a channel, as its members see them.
CHANGES = ("MODE", "KICK", "JOIN", "PART", "TOPIC")


def line(message: Message) -> str:
    """*message* without its tags (server-time differs by node)."""
    return Message(message.command, message.params, message.source).to_line()


class RaceCase(ClusterProcessCase):
    async def start_network(self, names: str) -> list[int]:
        """Nodes *names* on a new Redis and database; their TLS ports."""
        self.redis = start_redis(self)
        self.database = postgres_database()
        self.certs = Path(self.mktemp()).absolute()
        ports = []
        for name in names:  # one after the other: the first makes the CA
            _, port = await self.node(name)
            ports.append(port)
        return ports

    async def connection(self, port: int) -> LineClient:
        """An unregistered TLS client on *port*."""
        client = await connect_tls(port, self.certs / "ca.pem")
        self.addCleanup(client.transport.loseConnection)
        return client


async def nick_outcome(client: LineClient, nick: str) -> Message:
    """The NICK change to *nick*, or the 433 refusing it, *client* got."""
    return await client.wait_for(
        lambda m: (
            (m.command == "NICK" and m.params == (nick,))
            or (m.command == "433" and m.params[1:2] == (nick,))
        )
    )


async def registration(client: LineClient) -> Message:
    """The answer to *client*'s REGISTER: SUCCESS or FAIL."""
    return await client.wait_for(
        lambda m: (
            m.command == "REGISTER"
            or (m.command == "FAIL" and m.params[:1] == ("REGISTER",))
        )
    )


class NickRaceTests(RaceCase):
    async def test_one_nick_one_winner_across_two_nodes(self) -> None:
        port_a, port_b = await self.start_network("ab")
        # Pairs racing to register; the last two only match once folded.
        pairs = [(f"racer{n}", f"racer{n}") for n in range(6)]
        pairs += [("[a]", "{A}"), ("x\\y", "X|Y")]
        clients = [
            (await self.connection(port_a), await self.connection(port_b))
            for _ in pairs
        ]
        for (first, second), (nick_a, nick_b) in zip(clients, pairs, strict=True):
            first.send("NICK", nick_a)
            second.send("NICK", nick_b)
        for first, second in clients:
            for client in (first, second):
                client.send("USER", "racer", "0", "*", "Racer")
        for (first, second), (nick_a, nick_b) in zip(clients, pairs, strict=True):
            got = [
                await first.wait_for(lambda m: m.command in ("001", "433")),
                await second.wait_for(lambda m: m.command in ("001", "433")),
            ]
            self.assertEqual(
                sorted(m.command for m in got), ["001", "433"], (nick_a, nick_b)
            )
            refused = got[0] if got[0].command == "433" else got[1]
            self.assertEqual(
                refused.params[:2], ("*", nick_a if refused is got[0] else nick_b)
            )

    async def test_one_nick_change_wins_across_two_nodes(self) -> None:
        port_a, port_b = await self.start_network("ab")
        targets = [f"new{n}" for n in range(5)] + ["[b]"]
        wanted = {"[b]": ("[b]", "{B}")}
        users = [
            (
                await self.user(port_a, f"left{n}"),
                await self.user(port_b, f"right{n}"),
            )
            for n in range(len(targets))
        ]
        for (first, second), target in zip(users, targets, strict=True):
            nick_a, nick_b = wanted.get(target, (target, target))
            first.send("NICK", nick_a)
            second.send("NICK", nick_b)
        for n, ((first, second), target) in enumerate(zip(users, targets, strict=True)):
            nick_a, nick_b = wanted.get(target, (target, target))
            got = [
                await nick_outcome(first, nick_a),
                await nick_outcome(second, nick_b),
            ]
            self.assertEqual(sorted(m.command for m in got), ["433", "NICK"], target)
            loser = 0 if got[0].command == "433" else 1
            old = (f"left{n}", f"right{n}")[loser]
            self.assertEqual(got[loser].params[:2], (old, (nick_a, nick_b)[loser]))
            # The winner holds it network-wide; the loser kept its nick.
            winner = (first, second)[1 - loser]
            winner.send("WHOIS", old)
            whois = await winner.wait_for(lambda m: m.command in ("311", "401"))
            self.assertEqual(whois.command, "311", f"{old} kept its nick")


class RegistrationRaceTests(RaceCase):
    async def test_one_account_one_registration_across_two_nodes(self) -> None:
        port_a, port_b = await self.start_network("ab")
        names = [("shared0", "shared0"), ("shared1", "shared1"), ("[c]", "{C}")]
        users = [
            (await self.user(port_a, f"ra{n}"), await self.user(port_b, f"rb{n}"))
            for n in range(len(names))
        ]
        for (first, second), (name_a, name_b) in zip(users, names, strict=True):
            first.send("REGISTER", name_a, "*", PASSWORD)
            second.send("REGISTER", name_b, "*", PASSWORD)
        for first, second in users:
            got = [await registration(first), await registration(second)]
            self.assertEqual(
                sorted(m.params[m.command == "FAIL"] for m in got),
                ["ACCOUNT_EXISTS", "SUCCESS"],
                [m.to_line() for m in got],
            )


async def outcome(client: LineClient, channel: str) -> Outcome:
    """*channel* as *client*'s node shows it, with its ban list."""
    view = await channel_view(client, channel)
    got = await answers(client, ("MODE", channel, "+b"))
    return (view, sorted(m.params[2] for m in got if m.command == "367"))


def changes(client: LineClient, channel: str, since: int) -> list[str]:
    """The changes of *channel* *client* received after its *since*-th line."""
    return [
        line(m)
        for m in client.received[since:]
        if m.command in CHANGES and m.params[:1] == (channel,)
    ]


class ChannelRaceTests(RaceCase):
    async def test_conflicting_changes_end_the_same_everywhere(self) -> None:
        ports = await self.start_network("abc")
        alice = await self.user(ports[0], "alice")
        bob = await self.user(ports[1], "bob")
        carol = await self.user(ports[2], "carol")
        dave = await self.user(ports[1], "dave")
        watchers = [await self.user(port, f"watch{n}") for n, port in enumerate(ports)]
        erin = await self.user(ports[2], "erin")
        for client in (alice, bob, carol, dave, *watchers):
            client.send("JOIN", "#c")
            await client.wait_for(is_command("366"))
        alice.send("MODE", "#c", "+o", "bob")
        await eventually(lambda: self.settled([alice, bob, carol], "@bob"))
        start = {id(c): len(c.received) for c in (alice, bob, carol, *watchers)}

        log.info("step: the race")
        alice.send("MODE", "#c", "+k", "x")
        bob.send("MODE", "#c", "+k", "y")
        alice.send("MODE", "#c", "+l", "5")
        bob.send("MODE", "#c", "-l")
        alice.send("MODE", "#c", "+o", "carol")
        bob.send("MODE", "#c", "-o", "carol")
        alice.send("MODE", "#c", "+b", "spam!*@*")
        bob.send("MODE", "#c", "+b", "eggs!*@*")
        alice.send("TOPIC", "#c", "from alice")
        bob.send("TOPIC", "#c", "from bob")
        bob.send("KICK", "#c", "dave", "out")
        erin.send("JOIN", "#c")
        dave.send("JOIN", "#c")

        async def same() -> Outcome | None:
            seen = [await outcome(client, "#c") for client in watchers]
            log.info("outcomes: {seen!r}", seen=seen)
            return seen[0] if all(o == seen[0] for o in seen) else None

        final = await eventually(same)
        (names, modes, topic), bans = final
        self.assertEqual(bans, ["eggs!*@*", "spam!*@*"])
        self.assertIn(topic, (["from alice"], ["from bob"]))
        self.assertEqual(len(modes), 1)
        self.assertIn("k", modes[0][0])
        self.assertTrue({"@alice", "@bob"} <= set(names), names)

        # Every member saw one sequence of changes, ending in that outcome.
        members = [alice, bob, carol, *watchers]

        async def one_sequence() -> list[str] | None:
            for client in members:
                await client.sync()
            seen = [changes(c, "#c", start[id(c)]) for c in members]
            log.info("changes seen: {seen!r}", seen=seen)
            return seen[0] if all(s == seen[0] for s in seen) else None

        sequence = await eventually(one_sequence)
        self.assertTrue(any(" KICK #c dave " in change for change in sequence))
        last_topic = [c for c in sequence if " TOPIC #c :" in c][-1]
        self.assertEqual([last_topic.split(" :", 1)[1]], topic)

    async def settled(self, clients: list[LineClient], name: str) -> bool:
        """Whether every client's node lists *name* in #c's NAMES."""
        views = [await channel_view(client, "#c") for client in clients]
        return all(name in view[0] for view in views)


class OrderTests(RaceCase):
    async def test_messages_from_three_nodes_arrive_in_one_order(self) -> None:
        ports = await self.start_network("abc")
        senders = [await self.user(port, f"talk{n}") for n, port in enumerate(ports)]
        watchers = [await self.user(port, f"read{n}") for n, port in enumerate(ports)]
        members = senders + watchers
        for client in members:
            client.send("JOIN", "#o")
            await client.wait_for(is_command("366"))
        await eventually(lambda: self.all_joined(members))
        count = 30
        for n in range(count):
            for number, sender in enumerate(senders):
                sender.send("PRIVMSG", "#o", f"{number}:{n}")
        total = count * len(senders)

        def messages(client: LineClient) -> list[Message]:
            return [
                m
                for m in client.received
                if m.command == "PRIVMSG" and m.params[0] == "#o"
            ]

        async def all_arrived() -> bool:
            return all(len(messages(c)) >= total for c in members)

        await eventually(all_arrived)
        for client in members:
            await client.sync()
        orders = [[m.params[1] for m in messages(c)] for c in members]
        for order in orders:
            self.assertEqual(order, orders[0])
        self.assertEqual(len(orders[0]), total, "nothing doubled")
        for number in range(len(senders)):
            own = [text for text in orders[0] if text.startswith(f"{number}:")]
            self.assertEqual(own, [f"{number}:{n}" for n in range(count)])
        # One msgid per message, the same on every node, never reused.
        ids = [[m.tags.get("msgid") for m in messages(c)] for c in members]
        for got in ids:
            self.assertEqual(got, ids[0])
        self.assertNotIn(None, ids[0])
        self.assertEqual(len(set(ids[0])), total)

    async def all_joined(self, clients: list[LineClient]) -> bool:
        """Whether every client's node shows all of them in #o."""
        views = [await channel_view(client, "#o") for client in clients]
        return all(len(view[0]) == len(clients) for view in views)
