"""Tests for account logic, REGISTER/VERIFY and the admin command line."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from chat import numerics
from chat.accounts import (
    Accounts,
    LoginThrottledError,
    Throttle,
    password_problem,
)
from chat.admin import main as admin
from chat.config import AccountSettings
from chat.storage import Account, AccountDatabase, AccountExistsError
from chat.storage.sqlite import FILENAME, Database, SQLiteStore
from tests import services_support
from tests.accounts_support import (
    PASSWORD,
    TEST_COST,
    account_harness,
    inline,
    make_account,
)


def result(deferred: object) -> object:
    """The result of a Deferred that has already fired (or its failure)."""
    results: list[object] = []
    deferred.addBoth(results.append)  # type: ignore[attr-defined]
    assert results, "the Deferred has not fired"
    return results[0]


class AccountsTests(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.accounts = Accounts(
            SQLiteStore(":memory:"), self.clock, TEST_COST, worker=inline
        )

    def test_register_hashes_with_scrypt_and_derives_scram_keys(self) -> None:
        account = result(self.accounts.register("alice", PASSWORD, "a@b.example"))
        assert isinstance(account, Account)
        self.assertTrue(account.password_hash.startswith("scrypt$16$"))
        self.assertNotIn(PASSWORD, account.password_hash)
        assert account.scram is not None
        self.assertEqual(account.scram.iterations, 16)
        self.assertEqual(len(account.scram.stored_key), 32)
        stored = result(self.accounts.store.get_account("ALICE"))
        self.assertEqual(stored, account)

    def test_salts_differ(self) -> None:
        a = result(self.accounts.register("alice", PASSWORD))
        b = result(self.accounts.register("bob", PASSWORD))
        assert isinstance(a, Account) and isinstance(b, Account)
        self.assertNotEqual(a.password_hash, b.password_hash)
        assert a.scram and b.scram
        self.assertNotEqual(a.scram.salt, b.scram.salt)

    def test_register_twice(self) -> None:
        result(self.accounts.register("alice", PASSWORD))
        failure = result(self.accounts.register("Alice", PASSWORD))
        self.assertTrue(failure.check(AccountExistsError))

    def test_authenticate(self) -> None:
        result(self.accounts.register("alice", PASSWORD))
        found = result(self.accounts.authenticate("ALICE", PASSWORD, "10.0.0.1"))
        self.assertEqual(getattr(found, "name", None), "alice")
        self.assertIsNone(result(self.accounts.authenticate("alice", "x", "10.0.0.1")))
        self.assertIsNone(
            result(self.accounts.authenticate("bob", PASSWORD, "10.0.0.1"))
        )

    def test_unknown_accounts_cost_a_hash_too(self) -> None:
        """No shortcut for a missing account: timing does not tell."""
        calls: list[str] = []

        def counting(work, *args):  # type: ignore[no-untyped-def]
            calls.append(work.__name__)
            return inline(work, *args)

        self.accounts.worker = counting
        result(self.accounts.authenticate("nobody", PASSWORD, "10.0.0.1"))
        self.assertEqual(calls, ["_verify"])

    def test_throttled_per_account(self) -> None:
        result(self.accounts.register("alice", PASSWORD))
        for n in range(5):
            result(self.accounts.authenticate("alice", "bad", f"10.0.0.{n}"))
        failure = result(self.accounts.authenticate("alice", PASSWORD, "10.9.9.9"))
        self.assertTrue(failure.check(LoginThrottledError))
        self.clock.advance(60)
        found = result(self.accounts.authenticate("alice", PASSWORD, "10.9.9.9"))
        self.assertEqual(getattr(found, "name", None), "alice")

    def test_throttled_per_address(self) -> None:
        for n in range(10):
            result(self.accounts.authenticate(f"user{n}", "bad", "10.0.0.1"))
        result(self.accounts.register("alice", PASSWORD))
        failure = result(self.accounts.authenticate("alice", PASSWORD, "10.0.0.1"))
        self.assertTrue(failure.check(LoginThrottledError))
        found = result(self.accounts.authenticate("alice", PASSWORD, "10.0.0.2"))
        self.assertEqual(getattr(found, "name", None), "alice")

    def test_success_clears_the_account_failures(self) -> None:
        result(self.accounts.register("alice", PASSWORD))
        for _ in range(4):
            result(self.accounts.authenticate("alice", "bad", "10.0.0.1"))
        result(self.accounts.authenticate("alice", PASSWORD, "10.0.0.2"))
        for _ in range(4):
            result(self.accounts.authenticate("alice", "bad", "10.0.0.3"))
        self.assertFalse(result(self.accounts.throttled("alice", "10.0.0.4")))

    def test_set_password(self) -> None:
        result(self.accounts.register("alice", PASSWORD))
        self.assertTrue(result(self.accounts.set_password("alice", "new password")))
        self.assertIsNone(result(self.accounts.authenticate("alice", PASSWORD, "h")))
        self.assertIsNotNone(
            result(self.accounts.authenticate("alice", "new password", "h"))
        )
        self.assertFalse(result(self.accounts.set_password("bob", "whatever123")))

    def test_registrations_per_address(self) -> None:
        self.assertTrue(all(self.accounts.may_register("10.0.0.1") for _ in range(3)))
        self.assertFalse(self.accounts.may_register("10.0.0.1"))
        self.assertTrue(self.accounts.may_register("10.0.0.2"))
        self.clock.advance(3600)
        self.assertTrue(self.accounts.may_register("10.0.0.1"))

    def test_password_rules(self) -> None:
        self.assertIsNotNone(password_problem("short"))
        self.assertIsNotNone(password_problem("x" * 301))
        self.assertIsNone(password_problem("x" * 300))
        longer = AccountSettings(max_password_length=1024)
        self.assertIsNone(password_problem("x" * 1024, longer))
        self.assertIsNotNone(password_problem("x" * 1025, longer))
        self.assertIsNone(password_problem(PASSWORD))


class ThrottleTests(TestCase):
    def test_window_slides(self) -> None:
        clock = Clock()
        throttle = Throttle(clock, 2, 10.0)
        throttle.count("k")
        clock.advance(5)
        throttle.count("k")
        self.assertTrue(throttle.blocked("k"))
        clock.advance(5)
        self.assertFalse(throttle.blocked("k"), "the first one expired")
        clock.advance(5)
        self.assertFalse(throttle.blocked("k"))
        self.assertEqual(throttle._failures, {}, "idle keys are forgotten")


class RegisterCommandTests(TestCase):
    def setUp(self) -> None:
        self.harness = account_harness()

    def test_register_before_connecting(self) -> None:
        client = self.harness.connect()
        client.send("CAP LS 302", "CAP REQ draft/account-registration", "NICK alice")
        listed = " ".join(m.params[-1] for m in client.messages())
        self.assertIn(
            "draft/account-registration=before-connect,custom-account-name",
            listed.split(),
        )
        client.send(f"REGISTER * * :{PASSWORD}")
        messages = client.messages()
        self.assertEqual(messages[0].command, "REGISTER")
        self.assertEqual(messages[0].params[:2], ("SUCCESS", "alice"))
        self.assertEqual(messages[1].command, numerics.RPL_LOGGEDIN)
        self.assertEqual(client.conn.account, "alice")
        client.send("USER a 0 * :A", "CAP END")
        self.assertTrue(client.conn.registered)

    def test_custom_account_name_and_email(self) -> None:
        client = self.harness.register("alice")
        client.send(f"REGISTER Alicia alicia@example.org :{PASSWORD}")
        self.assertEqual(client.messages()[0].params[:2], ("SUCCESS", "Alicia"))
        stored = result(self.harness.server.accounts.store.get_account("alicia"))
        self.assertEqual(getattr(stored, "email", None), "alicia@example.org")

    def test_errors(self) -> None:
        make_account(self.harness, "taken")
        client = self.harness.connect()
        client.send(f"REGISTER * * :{PASSWORD}")
        client.send(f"REGISTER 1bad * :{PASSWORD}")
        client.send(f"REGISTER NickServ * :{PASSWORD}")
        client.send("REGISTER bob * short")
        client.send(f"REGISTER bob not-an-email :{PASSWORD}")
        client.send(f"REGISTER TAKEN * :{PASSWORD}")
        codes = [m.params[1] for m in client.messages()]
        self.assertEqual(
            codes,
            [
                "NEED_NICK",
                "BAD_ACCOUNT_NAME",
                "BAD_ACCOUNT_NAME",
                "WEAK_PASSWORD",
                "INVALID_EMAIL",
                "ACCOUNT_EXISTS",
            ],
        )

    def test_register_after_a_refused_nick(self) -> None:
        self.harness.register("root")
        client = self.harness.connect()
        client.send("NICK root")
        self.assertEqual(client.commands(), [numerics.ERR_NICKNAMEINUSE])
        client.send(f"REGISTER * * :{PASSWORD}")
        self.assertEqual(
            client.messages()[0].params[:3], ("REGISTER", "ACCOUNT_EXISTS", "root")
        )
        self.assertIsNone(
            result(self.harness.server.accounts.store.get_account("root"))
        )

    def test_already_logged_in(self) -> None:
        client = self.harness.register("alice")
        client.send(f"REGISTER * * :{PASSWORD}")
        client.raw()
        client.send(f"REGISTER other * :{PASSWORD}")
        self.assertEqual(
            client.lines(),
            [":irc.test FAIL REGISTER ALREADY_AUTHENTICATED other :You are logged in"],
        )

    def test_registrations_are_limited_per_address(self) -> None:
        client = self.harness.connect("192.0.2.1")
        for n in range(4):
            client.send(f"REGISTER user{n} * :{PASSWORD}")
            client.conn.account = None
        codes = [m.params[:2] for m in client.messages() if m.command != "900"]
        self.assertEqual(
            codes[-1], ("REGISTER", "TEMPORARILY_UNAVAILABLE"), "the fourth one"
        )
        self.assertEqual(len([c for c in codes if c[0] == "SUCCESS"]), 3)

    def test_store_failure_is_answered(self) -> None:
        self.harness.server.accounts.store.close()
        client = self.harness.connect()
        client.send(f"REGISTER alice * :{PASSWORD}")
        self.assertEqual(client.messages()[0].params[1], "TEMPORARILY_UNAVAILABLE")
        self.flushLoggedErrors(RuntimeError)

    def test_verify_has_nothing_to_verify(self) -> None:
        client = self.harness.connect()
        client.send("VERIFY alice 1234")
        self.assertEqual(client.messages()[0].params[:2], ("VERIFY", "INVALID_CODE"))

    def test_operator_account_gets_oper_on_login(self) -> None:
        make_account(self.harness, "boss")
        self.harness.server.accounts.store.set_operator("boss", True)
        client = self.harness.register("boss")
        client.send(f"NS IDENTIFY {PASSWORD}")
        self.assertIn("o", client.conn.modes)
        self.assertIn(numerics.RPL_YOUREOPER, client.commands())

    def test_labeled_register_is_labeled(self) -> None:
        client = self.harness.connect()
        client.send("CAP REQ :labeled-response batch", "NICK alice", "USER a 0 * :A")
        client.send("CAP END")
        client.raw()
        client.send(f"@label=r1 REGISTER * * :{PASSWORD}")
        lines = client.lines()
        self.assertTrue(lines[0].startswith("@label=r1 :irc.test BATCH +"), lines)


class AdminTests(TestCase):
    def setUp(self) -> None:
        self.data_dir = Path(self.mktemp())
        #: Where the admin tool works: its first arguments.
        self.where = ["--data-dir", str(self.data_dir)]

    def run_admin(self, *argv: str, stdin: str = "") -> str:
        out = io.StringIO()
        status = admin(
            [*self.where, *argv],
            stdin=io.StringIO(stdin),
            stdout=out,
            cost=TEST_COST,
        )
        self.assertEqual(status, 0)
        return out.getvalue()

    def database(self) -> AccountDatabase:
        db = Database(self.data_dir / FILENAME)
        self.addCleanup(db.close)
        return db

    def test_create_list_reset_oper_delete(self) -> None:
        self.assertEqual(
            self.run_admin(
                "create", "alice", "--email", "a@b.c", stdin=PASSWORD + "\n"
            ),
            "created alice\n",
        )
        self.run_admin("create", "bob", "--operator", stdin=PASSWORD + "\n")
        listing = self.run_admin("list").splitlines()
        self.assertEqual([line.split("\t")[0] for line in listing], ["alice", "bob"])
        self.assertTrue(listing[0].endswith("a@b.c"))
        self.assertTrue(listing[1].endswith("operator"))
        before = self.database().get_account("alice")
        self.run_admin("reset-password", "alice", stdin="another password\n")
        after = self.database().get_account("alice")
        assert before and after
        self.assertNotEqual(before.password_hash, after.password_hash)
        self.assertNotEqual(before.scram, after.scram)
        self.run_admin("oper", "alice")
        self.assertTrue(self.database().get_account("alice").operator)
        self.run_admin("oper", "alice", "--remove")
        self.assertFalse(self.database().get_account("alice").operator)
        self.run_admin("delete", "alice")
        self.assertIsNone(self.database().get_account("alice"))

    def test_the_server_accepts_what_admin_created(self) -> None:
        self.run_admin("create", "alice", stdin=PASSWORD + "\n")
        harness = account_harness()
        harness.server.accounts.store = SQLiteStore(self.data_dir / FILENAME)
        self.addCleanup(harness.server.accounts.store.close)
        client = harness.register("alice")
        client.send(f"NS IDENTIFY {PASSWORD}")
        self.assertEqual(client.conn.account, "alice")

    def test_errors_exit(self) -> None:
        for argv, stdin in (
            (("create", "1bad"), PASSWORD),
            (("create", "alice"), "short"),
            (("delete", "nobody"), ""),
            (("oper", "nobody"), ""),
            (("reset-password", "nobody"), PASSWORD),
        ):
            with self.assertRaises(SystemExit):
                self.run_admin(*argv, stdin=stdin + "\n")
        self.run_admin("create", "alice", stdin=PASSWORD + "\n")
        with self.assertRaises(SystemExit):
            self.run_admin("create", "ALICE", stdin=PASSWORD + "\n")

    def test_runs_as_a_module(self) -> None:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "chat.admin",
                "--data-dir",
                str(self.data_dir.absolute()),
                "list",
            ],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent.parent,
            check=False,
        )
        self.assertEqual((done.returncode, done.stdout, done.stderr), (0, "", ""))
        self.assertTrue((self.data_dir / FILENAME).exists())

    def config_text(self) -> str:
        """A config file naming the database the tests look at."""
        return f'data-dir = "{self.data_dir.absolute()}"\n'

    def test_database_from_the_config_file(self) -> None:
        config = Path(self.mktemp())
        config.write_text(self.config_text())
        out = io.StringIO()
        admin(
            ["--config", str(config), "create", "carol"],
            stdin=io.StringIO(PASSWORD + "\n"),
            stdout=out,
            cost=TEST_COST,
        )
        self.assertIsNotNone(self.database().get_account("carol"))


class PostgresAdminTests(AdminTests):
    """The same admin commands on a PostgreSQL ``--database``."""

    def setUp(self) -> None:
        self.dsn = services_support.postgres_database()
        self.where = ["--database", self.dsn]

    def config_text(self) -> str:
        return f'[cluster]\ndatabase = "{self.dsn}"\n'

    def database(self) -> AccountDatabase:
        from chat.storage.postgres import PostgresDatabase

        db = PostgresDatabase(self.dsn)
        self.addCleanup(db.close)
        return db

    async def test_the_server_accepts_what_admin_created(self) -> None:
        from twisted.internet import reactor

        from chat.storage.postgres import PostgresStore

        self.run_admin("create", "alice", stdin=PASSWORD + "\n")
        store = PostgresStore(self.dsn, reactor)
        self.addCleanup(store.close)
        account = await store.get_account("ALICE")
        self.assertEqual(account.name if account else None, "alice")

    def test_runs_as_a_module(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "chat.admin", "--database", self.dsn, "list"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent.parent,
            check=False,
        )
        self.assertEqual((done.returncode, done.stdout), (0, ""), done.stderr)

    def test_an_unreachable_server_exits_with_a_reason(self) -> None:
        port = services_support.free_port()
        with self.assertRaises(SystemExit) as raised:
            self.where = ["--database", f"postgresql://chat:hunter2@127.0.0.1:{port}/x"]
            self.run_admin("list")
        self.assertIn("cannot open the database", str(raised.exception))
        self.assertNotIn("hunter2", str(raised.exception))


class RegistrationSettingsTests(TestCase):
    """``[accounts]``: password length, before-connect, e-mail required."""

    def test_minimum_password_length_is_a_setting(self) -> None:
        harness = account_harness(accounts=AccountSettings(min_password_length=3))
        client = harness.register("alice")
        client.send("REGISTER * * ab")
        self.assertEqual(client.messages()[0].params[1], "WEAK_PASSWORD")
        client.send("REGISTER * * abc")
        self.assertEqual(client.messages()[0].params[:2], ("SUCCESS", "alice"))
        bob = harness.register("bob")
        bob.send("NS REGISTER xy")
        self.assertIn("at least 3", bob.messages()[0].params[-1])
        bob.send("NS REGISTER xyz")
        self.assertIn("registered", bob.messages()[0].params[-1])

    def test_registration_before_connect_can_be_refused(self) -> None:
        harness = account_harness(
            accounts=AccountSettings(registration_before_connect=False)
        )
        client = harness.connect()
        client.send("CAP LS 302", "NICK alice")
        listed = " ".join(m.params[-1] for m in client.messages()).split()
        self.assertIn("draft/account-registration=custom-account-name", listed)
        client.send(f"REGISTER * * :{PASSWORD}")
        self.assertEqual(
            client.messages()[0].params[:2],
            ("REGISTER", "COMPLETE_CONNECTION_REQUIRED"),
        )
        client.send("USER a 0 * :A", "CAP END")
        client.raw()
        client.send(f"REGISTER * * :{PASSWORD}")
        self.assertEqual(client.messages()[0].params[:2], ("SUCCESS", "alice"))

    def test_email_can_be_required(self) -> None:
        harness = account_harness(accounts=AccountSettings(email_required=True))
        client = harness.connect()
        client.send("CAP LS 302")
        listed = " ".join(m.params[-1] for m in client.messages()).split()
        self.assertIn(
            "draft/account-registration="
            "before-connect,custom-account-name,email-required",
            listed,
        )
        client.send("NICK alice", "USER a 0 * :A", "CAP END")
        client.raw()
        client.send(f"REGISTER * * :{PASSWORD}")
        self.assertEqual(client.messages()[0].params[:2], ("REGISTER", "INVALID_EMAIL"))
        client.send("NS REGISTER " + PASSWORD)
        self.assertIn("e-mail address is required", client.messages()[0].params[-1])
        client.send(f"REGISTER * alice@example.org :{PASSWORD}")
        self.assertEqual(client.messages()[0].params[:2], ("SUCCESS", "alice"))
