"""``python -m chat.admin``: manage accounts on the server's database.

Works on the server's database: ``chat.db`` in the data directory
(``--data-dir``, or the one a ``--config`` file names), or the PostgreSQL
database of ``--database`` (or of the config file); also while the server
runs: SQLite's WAL lets both use the file, and the server reads accounts
from the database at each login.  Passwords are read from standard input
(prompted on a terminal).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from chat import passwords
from chat.accounts import PasswordCost, password_problem, scram_credentials
from chat.casemap import valid_nick
from chat.config import ConfigError, ServerConfig, load_config
from chat.storage import (
    Account,
    AccountDatabase,
    AccountExistsError,
    StoreUnavailableError,
)
from chat.storage.factory import open_account_database


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chat.admin", description="Manage chat-server accounts."
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", type=Path, help="the server's data directory")
    where.add_argument("--config", type=Path, help="the server's TOML config file")
    parser.add_argument(
        "--database", help="sqlite (default) or postgresql://user@host:port/dbname"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create an account")
    create.add_argument("name")
    create.add_argument("--email")
    create.add_argument("--operator", action="store_true", help="an IRC operator")
    commands.add_parser("list", help="list the accounts")
    delete = commands.add_parser("delete", help="delete an account and its channels")
    delete.add_argument("name")
    reset = commands.add_parser("reset-password", help="set a new password")
    reset.add_argument("name")
    oper = commands.add_parser("oper", help="make an account an IRC operator")
    oper.add_argument("name")
    oper.add_argument("--remove", action="store_true", help="take it back")
    return parser


def _read_password(stdin: TextIO, config: ServerConfig) -> str:
    """A new password: prompted twice on a terminal, else one stdin line."""
    if stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise SystemExit("the passwords differ")
    else:
        password = stdin.readline().rstrip("\n")
    problem = password_problem(password, config.accounts)
    if problem is not None:
        raise SystemExit(problem)
    return password


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    cost: PasswordCost | None = None,
) -> int:
    """Run one admin command; the exit status is 0 on success."""
    args = _parser().parse_args(argv)
    cost = cost or PasswordCost()
    overrides = {"database": args.database} if args.database else {}
    try:
        config = load_config(args.config, overrides)
    except ConfigError as error:
        raise SystemExit(str(error)) from error
    data_dir = args.data_dir or config.data_dir
    try:
        database = open_account_database(config.database, data_dir)
    except StoreUnavailableError as error:
        raise SystemExit(f"cannot open the database: {error}") from error
    try:
        return _run(args, database, stdin, stdout, cost, config)
    finally:
        database.close()


def _run(
    args: argparse.Namespace,
    database: AccountDatabase,
    stdin: TextIO,
    stdout: TextIO,
    cost: PasswordCost,
    config: ServerConfig,
) -> int:
    if args.command == "list":
        for account in database.list_accounts():
            created = time.strftime("%Y-%m-%d", time.gmtime(account.created))
            flags = " operator" if account.operator else ""
            print(
                f"{account.name}\t{created}\t{account.email or '-'}{flags}", file=stdout
            )
        return 0
    name = args.name
    if args.command == "create":
        if not valid_nick(name, config.limits.nick_length):
            raise SystemExit(f"{name!r} is not a valid nick, so not an account name")
        hashed = passwords.hash_password(
            password := _read_password(stdin, config), n=cost.scrypt_n
        )
        account = Account(
            name=name,
            password_hash=hashed,
            scram=scram_credentials(password, cost.scram_iterations),
            email=args.email,
            created=time.time(),
            operator=args.operator,
        )
        try:
            database.create_account(account)
        except AccountExistsError:
            raise SystemExit(f"{name} already exists") from None
        print(f"created {name}", file=stdout)
        return 0
    if args.command == "delete":
        done = database.delete_account(name)
        message = f"deleted {name}"
    elif args.command == "reset-password":
        if database.get_account(name) is None:
            raise SystemExit(f"no account {name}")
        password = _read_password(stdin, config)
        done = database.set_password(
            name,
            passwords.hash_password(password, n=cost.scrypt_n),
            scram_credentials(password, cost.scram_iterations),
        )
        message = f"new password for {name}"
    else:
        done = database.set_operator(name, not args.remove)
        message = f"{name} is {'no longer ' if args.remove else ''}an operator"
    if not done:
        raise SystemExit(f"no account {name}")
    print(message, file=stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
