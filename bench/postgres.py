"""A throwaway PostgreSQL cluster, for the tests and benchmarks of a DuckLake whose catalog is PostgreSQL:
its own folder, a free port on 127.0.0.1 only, its socket in its folder, and a password asked of every
connection (SCRAM), given to clients the way libpq takes it (a .pgpass file). Needs PostgreSQL's server
programs (`make postgres` installs Debian's `postgresql`)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "adforge"


def find_initdb() -> Path | None:
    """initdb on PATH, or in Debian's versioned folder (newest first), which is not on PATH."""
    found = [Path(p) for p in [shutil.which("initdb")] if p]
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parts[-3].isdigit()]
    found += sorted(versions, key=lambda p: int(p.parts[-3]), reverse=True)
    return found[0].resolve() if found else None


def server_command(*args: str | Path) -> list[str]:
    """PostgreSQL's server refuses to run as root: as root, its programs run as the `postgres` user."""
    command = [str(a) for a in args]
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def checked(command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                            timeout=120)  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")


@dataclass(frozen=True)
class Cluster:
    bin: Path
    port: int
    password: str
    passfile: Path  # .pgpass, 0600, with the password of USER on this cluster
    cache: Path  # the adforge processes' cache folder (XDG_CACHE_HOME): the lakes' journals

    def dsn(self, dbname: str) -> str:
        return f"dbname={dbname} host=127.0.0.1 port={self.port} user={USER}"

    def new_lake(self, dbname: str) -> str:
        """A new, empty database on the cluster; returns the db setting of a DuckLake cataloged in it."""
        checked([str(self.bin / "createdb"), "--no-password", "-h", "127.0.0.1", "-p", str(self.port),
                 "-U", USER, dbname], env=client_env(PGPASSFILE=str(self.passfile)))  # fmt: skip
        return f"ducklake:postgres:{self.dsn(dbname)}"

    def env(self) -> dict[str, str]:
        """The environment of a process that reaches the cluster through the password file."""
        return client_env(PGPASSFILE=str(self.passfile)) | {"XDG_CACHE_HOME": str(self.cache)}


def client_env(**pg: str) -> dict[str, str]:
    """This process's environment without any PG* variable of the developer's (or ADFORGE_* setting), plus
    the PG* variables given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "ADFORGE_"))}
    return env | pg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A running cluster for the block; stopped and removed afterwards."""
    initdb = find_initdb()
    if initdb is None:
        raise RuntimeError("PostgreSQL's server is not installed (no initdb; `make postgres` installs it)")
    root = Path(tempfile.mkdtemp(prefix="adforge-pg-"))  # in /tmp: the server's user reaches it
    client = Path(tempfile.mkdtemp(prefix="adforge-pg-client-"))  # this user's alone
    password = secrets.token_urlsafe(18)
    (root / "pwfile").write_text(password)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pwfile", "postgres")
    port, data, pg_ctl = free_port(), root / "data", initdb.parent / "pg_ctl"
    started = False
    try:
        pwfile = f"--pwfile={root / 'pwfile'}"
        checked(server_command(initdb, "-D", data, "-U", USER, "--auth=scram-sha-256", pwfile, "-E", "UTF8",
                               "--locale=C", "--no-sync"))  # fmt: skip
        (root / "pwfile").unlink()
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        try:
            checked(server_command(pg_ctl, "-D", data, "-l", root / "server.log", "-o", options, "-w",
                                   "-t", "60", "start"))  # fmt: skip
        except RuntimeError as e:
            log = root / "server.log"
            raise RuntimeError(f"{e}\n{log.read_text()[-2000:] if log.exists() else ''}") from None
        started = True
        passfile = client / ".pgpass"
        passfile.write_text(f"127.0.0.1:{port}:*:{USER}:{password}\n")
        passfile.chmod(0o600)  # libpq ignores a password file others may read
        yield Cluster(initdb.parent, port, password, passfile, client / "cache")
    finally:
        if started:
            subprocess.run(server_command(pg_ctl, "-D", data, "-m", "fast", "-w", "stop"),
                           capture_output=True, timeout=120)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(client, ignore_errors=True)
