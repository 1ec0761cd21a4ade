"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` package, a new cluster in a temporary
folder (initdb + pg_ctl, as the `postgres` user when the tests run as root), on a free port.

`.ci/run` installs the package; elsewhere the tests that need it skip with the reason, unless
REQUIRE_POSTGRES=1, where that is a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.utils.servers import free_port


@dataclass(frozen=True)
class Postgres:
    url: str  # postgresql+pg8000://postgres@127.0.0.1:PORT/postgres
    folder: Path
    bin: Path
    port: int

    def stop(self) -> None:
        _run(self, "pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "server.log")
        _run(self, "pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", log, "-w", "start")


def _bin_folder() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _run(server: Postgres, program: str, *args: str) -> None:
    command = [str(server.bin / program), *args]
    if os.getuid() == 0:  # PostgreSQL refuses to run as root.
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)


def skip_or_fail(reason: str) -> None:
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL tests are required here but cannot run: {reason}")
    pytest.skip(reason)


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    folder_bin = _bin_folder()
    if folder_bin is None:
        skip_or_fail("PostgreSQL is not installed (apt-get install postgresql)")
    assert folder_bin is not None
    folder = Path(tempfile.mkdtemp(prefix="cifar10-pg-"))
    if os.getuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    server = Postgres(f"postgresql+pg8000://postgres@127.0.0.1:{port}/postgres", folder, folder_bin, port)
    try:
        _run(server, "initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        server.start()
        yield server
    finally:
        with suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
