"""A real, throwaway PostgreSQL server for tests (Debian's binaries, any version found).

`PostgresServer` runs ``initdb`` in a temporary folder and ``pg_ctl start`` on a free
loopback port; as root it runs both as the ``postgres`` user (PostgreSQL refuses root).
`PostgresUnavailable` says why a server could not be started; tests skip with it.

Example::

    with PostgresServer() as pg:
        url = pg.url        # postgresql+psycopg://thinkgate@127.0.0.1:PORT/postgres
        pg.stop(); pg.start()        # a database outage, for fault tests
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.servers import free_port


class PostgresUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable(
        "PostgreSQL binaries not found (apt-get install postgresql; `make test` does it as root)"
    )


class PostgresServer:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="thinkgate-pg-"))
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no `postgres` user"
                ) from None
            self.user = "postgres"
            shutil.chown(self.root, user="postgres")
        self.url = f"postgresql+psycopg://thinkgate@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()[-500:]
            raise PostgresUnavailable(f"{args[0]} failed ({done.returncode}): {output}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "thinkgate", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def __enter__(self) -> PostgresServer:
        try:
            self.init()
            self.start()
        except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(self.root, ignore_errors=True)
            raise PostgresUnavailable(str(exc)) from exc
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(PostgresUnavailable):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
