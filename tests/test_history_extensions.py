"""What the history stores do besides CHATHISTORY: redact (and search)."""

from __future__ import annotations

from pathlib import Path

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from chat.history import (
    HistoryConfig,
    HistoryStore,
    Query,
    continuation_prefix,
)
from chat.history.memory import MemoryHistory
from chat.history.sqlite import FILENAME, SQLiteHistory
from tests import services_support
from tests.test_history import T0, ids, item


class ExtensionsMixin:
    """Tests every `HistoryStore` passes; subclasses make the store."""

    config = HistoryConfig(max_age=0, max_per_target=1000)

    def make_store(self, config: HistoryConfig) -> HistoryStore:
        raise NotImplementedError

    def setUp(self) -> None:
        self.store = self.make_store(self.config)

    async def latest(self, key: str = "#c") -> list[str]:
        return ids(await self.store.query(Query((key,), "LATEST", None, 100)))

    async def test_redact_removes_one_message(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        for n in range(1, 4):
            self.store.add(item(n))
        self.store.add(item(4, target="#other"))
        t(await self.store.redact(["#c"], "m2"), True)
        t(await self.latest(), ["m1", "m3"])
        t(await self.store.redact(["#c"], "m2"), False)
        t(await self.store.redact(["#c"], "m4"), False, "another target's")
        t(await self.latest("#other"), ["m4"])

    async def test_redact_removes_continuation_lines(self) -> None:
        t = self.assertEqual  # type: ignore[attr-defined]
        self.store.add(item(1))
        for index in (1, 2):
            self.store.add(
                item(2, msgid=continuation_prefix("m1") + str(index), time=T0 + 1)
            )
        self.store.add(item(10))
        t(await self.store.redact(["#c"], "m1"), True)
        t(await self.latest(), ["m10"])


class MemoryExtensionsTests(ExtensionsMixin, TestCase):
    def make_store(self, config: HistoryConfig) -> HistoryStore:
        clock = Clock()
        clock.advance(T0 + 100)
        return MemoryHistory(clock, config)


class PostgresExtensionsTests(ExtensionsMixin, TestCase):
    """The same on a real PostgreSQL server (tests.services_support)."""

    def make_store(self, config: HistoryConfig) -> HistoryStore:
        from chat.history.postgres import PostgresHistory

        store = PostgresHistory(services_support.postgres_database(), reactor, config)
        self.addCleanup(store.close)
        return store


class SQLiteExtensionsTests(ExtensionsMixin, TestCase):
    def make_store(self, config: HistoryConfig) -> HistoryStore:
        path = Path(self.mktemp()) / FILENAME
        store = SQLiteHistory(path, reactor, config)
        self.addCleanup(store.close)
        return store
