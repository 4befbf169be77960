"""Servers under test: this one, ngIRCd, InspIRCd and Ergo, as our own processes.

Each `Server` writes its configuration to a temporary directory, listens on
loopback only (a plaintext and a TLS port), runs pinned to the given cores
with a high open-file limit, and has its limits raised so that flood and
connection throttles never hold the benchmark clients back.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The source tree of the chat server under test: this one, or another
#: checkout (``BENCH_CHAT_ROOT``) to compare two versions in one session.
CHAT_ROOT = Path(os.environ.get("BENCH_CHAT_ROOT", ROOT))
#: Open files allowed to servers and generators.
NOFILE = 100_000


def free_port() -> int:
    """A currently unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_nofile() -> None:
    """Raise this process's open-file limit as far as allowed."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (NOFILE, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
            return
        except (ValueError, OSError):
            continue


def dev_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A development CA and server certificate: (cert, key, ca)."""
    sys.path.insert(0, str(ROOT))
    from chat.tls import ensure_dev_certificate

    dev = ensure_dev_certificate(directory)
    return dev.cert, dev.key, dev.ca


class Server:
    """One server process under test."""

    name = "server"
    #: Clients registering at once while a scenario sets up.
    setup_concurrency = 100

    def __init__(self, workdir: Path, cores: set[int]) -> None:
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cores = cores
        self.port = free_port()
        self.tls_port = free_port()
        self.cert, self.key, self.ca = dev_certificate(workdir / "certs")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "stdout.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        """The pid of the process doing the work."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        """Start the server and wait until both ports accept connections."""
        cores = self.cores

        def prepare() -> None:
            raise_nofile()
            os.sched_setaffinity(0, cores)

        env = dict(os.environ, PYTHONPATH=str(CHAT_ROOT))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=prepare,
                env=env,
            )
        deadline = time.monotonic() + 20
        for port in (self.port, self.tls_port):
            while True:
                if self.process.poll() is not None:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{self.name} exited:\n{tail}")
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(
                            f"{self.name}: port {port} not open"
                        ) from None
                    time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ChatServer(Server):
    """This project's server, run with ``twistd -n chat``."""

    name = "chat"

    def command(self) -> list[str]:
        config = self.dir / "chat.toml"
        config.write_text(
            "[limits]\n"
            "max_clients = 100000\n"
            "max_channels = 2000\n"
            "sendq_bytes = 16777216\n"
            'exempt = ["127.0.0.1", "::1"]\n'
            'fakelag_exempt = ["127.0.0.1", "::1"]\n'
            "[timeouts]\n"
            "registration = 120\n"
            "ping_interval = 600\n"
            "ping_timeout = 600\n"
        )
        listen = "interface=127.0.0.1:backlog=4096"
        return [
            str(ROOT / ".venv" / "bin" / "twistd"),
            "-n",
            "--pidfile=",
            "-l",
            str(self.dir / "twistd.log"),
            "chat",
            "--config",
            str(config),
            "--cert",
            str(self.cert),
            "--key",
            str(self.key),
            "--data-dir",
            str(self.dir / "data"),
            "--listen",
            f"tcp:{self.port}:{listen}",
            "--listen",
            f"tls:{self.tls_port}:{listen}",
        ]

    def version(self) -> str:
        sys.path.insert(0, str(ROOT))
        import OpenSSL

        import twisted
        from chat.server import VERSION

        return (
            f"{VERSION} (Python {sys.version.split()[0]}, Twisted "
            f"{twisted.__version__}, pyOpenSSL {OpenSSL.__version__})"
        )


class Ngircd(Server):
    """ngIRCd from Debian, penalties and per-address limits off."""

    name = "ngircd"
    #: ngIRCd listens with a backlog of 10: more at once means SYN retries.
    setup_concurrency = 8

    def command(self) -> list[str]:
        config = self.dir / "ngircd.conf"
        config.write_text(
            f"""[Global]
    Name = bench.ngircd
    Info = benchmark
    Listen = 127.0.0.1
    Ports = {self.port}
    PidFile = {self.dir / "ngircd.pid"}
    MotdPhrase = bench
[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 30
    MaxPenaltyTime = 0
    PingTimeout = 600
    PongTimeout = 600
    IdleTimeout = 0
[Options]
    DNS = no
    Ident = no
    PAM = no
    RequireAuthPing = no
[SSL]
    CertFile = {self.cert}
    KeyFile = {self.key}
    Ports = {self.tls_port}
"""
        )
        return [binary("ngircd"), "-n", "-f", str(config)]

    def version(self) -> str:
        out = subprocess.run(
            [binary("ngircd"), "--version"], capture_output=True, text=True
        )
        return out.stdout.splitlines()[0]


class Inspircd(Server):
    """InspIRCd from Debian, connect class limits and thresholds raised."""

    name = "inspircd"
    #: InspIRCd completes registrations once a second: many at once.
    setup_concurrency = 1000

    def command(self) -> list[str]:
        config = self.dir / "inspircd.conf"
        config.write_text(
            f"""<config format="xml">
<server name="bench.inspircd" description="benchmark" network="Bench">
<admin name="bench" nick="bench" email="bench@localhost">
<module name="ssl_gnutls">
<sslprofile name="bench" provider="gnutls" certfile="{self.cert}"
    keyfile="{self.key}" hash="sha256" requestclientcert="no">
<bind address="127.0.0.1" port="{self.port}" type="clients">
<bind address="127.0.0.1" port="{self.tls_port}" type="clients" sslprofile="bench">
<connect name="bench" allow="*" maxchans="2000" timeout="120" pingfreq="600"
    hardsendq="67108864" softsendq="16777216" recvq="16777216"
    threshold="100000000" commandrate="100000000" fakelag="no"
    localmax="1000000" globalmax="1000000" maxconnwarn="no"
    resolvehostnames="no" useident="no" limit="1000000" modes="">
<cidr ipv4clone="32" ipv6clone="128">
<channels users="2000" opers="2000">
<performance netbuffersize="65536" somaxconn="4096" softlimit="100000"
    clonesonconnect="no" timeskipwarn="0">
<security announceinvites="dynamic" hidesplits="no" hideulines="no"
    maxtargets="20" runasuser="" runasgroup="">
<pid file="{self.dir / "inspircd.pid"}">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default"
    target="{self.dir / "inspircd.log"}">
<files motd="{self.dir / "motd.txt"}">
"""
        )
        (self.dir / "motd.txt").write_text("bench\n")
        return [
            binary("inspircd"),
            "--nofork",
            "--runasroot",
            f"--config={config}",
        ]

    def version(self) -> str:
        out = subprocess.run(
            [binary("inspircd"), "--version"], capture_output=True, text=True
        )
        return out.stdout.strip().splitlines()[0]


class Ergo(Server):
    """Ergo built from source (``--ergo-bin`` or ``ergo`` on PATH).

    Its configuration is the ``default.yaml`` beside the binary (Ergo's
    source tree) with the limits off: loopback listeners, a 64 MiB send
    queue, no per-address counts or throttles, no fakelag.
    """

    name = "ergo"
    #: Set by ``--ergo-bin``; otherwise ``ergo`` on PATH.
    path: str | None = None

    def command(self) -> list[str]:
        import yaml

        program = Path(binary("ergo"))
        source = program.resolve().parent
        base = source / "default.yaml"
        if not base.exists():
            raise RuntimeError(f"ergo: no default.yaml beside {program}")
        config = yaml.safe_load(base.read_text())
        server = config["server"]
        server["listeners"] = {
            f"127.0.0.1:{self.port}": {},
            f"127.0.0.1:{self.tls_port}": {
                "tls": {"cert": str(self.cert), "key": str(self.key)},
                "min-tls-version": 1.2,
            },
        }
        server["max-sendq"] = "64m"
        server["ip-limits"]["count"] = False
        server["ip-limits"]["throttle"] = False
        motd = self.dir / "ergo.motd"
        motd.write_text("bench\n")
        server["motd"] = str(motd)
        config["fakelag"]["enabled"] = False
        config["datastore"]["path"] = str(self.dir / "ircd.db")
        config["languages"]["path"] = str(source / "languages")
        config["lock-file"] = str(self.dir / "ircd.lock")
        path = self.dir / "ircd.yaml"
        path.write_text(yaml.safe_dump(config))
        (self.dir / "ircd.db").unlink(missing_ok=True)  # a fresh one each start
        made = subprocess.run(
            [str(program), "initdb", "--conf", str(path)],
            capture_output=True,
            text=True,
            cwd=self.dir,
        )
        if made.returncode:
            raise RuntimeError(f"ergo initdb failed: {made.stdout}{made.stderr}")
        return [str(program), "run", "--conf", str(path)]

    def version(self) -> str:
        out = subprocess.run(
            [binary("ergo"), "--version"], capture_output=True, text=True
        )
        return out.stdout.strip().splitlines()[0]


SERVERS: dict[str, type[Server]] = {
    "chat": ChatServer,
    "ngircd": Ngircd,
    "inspircd": Inspircd,
    "ergo": Ergo,
}


def binary(name: str) -> str:
    """The path of program *name* (Debian puts daemons in /usr/sbin)."""
    if name == "ergo" and Ergo.path:
        return Ergo.path
    return shutil.which(name) or f"/usr/sbin/{name}"


def installed(name: str) -> bool:
    """Whether server *name* can be started here."""
    return name == "chat" or Path(binary(name)).exists()
