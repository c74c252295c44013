"""A throwaway S3-compatible server for tests: moto's server mode on loopback.

``start_s3(base_dir)`` runs ``python -m moto.server`` as a separate process bound to
127.0.0.1 and returns an :class:`S3Server` once the server answers HTTP. Objects live in
that process's memory; objects bigger than ~5 MB spill to temporary files under the run
directory (``base_dir/s3-*/tmp``). ``stop()`` ends the process and deletes the directory.

Ports never collide, with each other or with xdist workers: the server binds port 0, so
the kernel picks a free port, and we read the port back from the process's listening
socket (psutil) instead of probing for a free port first and racing to bind it.

Credentials: the server never checks them, but botocore insists on having some. The
server process gets dummy ``AWS_*`` variables and ``AWS_EC2_METADATA_DISABLED=true``
(any real ``AWS_*`` variables of the caller are dropped). Clients get the same dummy key,
secret and region explicitly through :meth:`S3Server.storage_options` (for fsspec/s3fs)
or :meth:`S3Server.client` (botocore), so botocore's credential chain, the caller's
``~/.aws`` credentials and the EC2 metadata service are never consulted. If the caller's
shell sets ``HTTP_PROXY``, add ``127.0.0.1`` to ``NO_PROXY``: botocore honours both.

Servers whose Python process died without ``stop()`` (killed pytest, ``os._exit``, CI
timeout) are recorded in ``/tmp/loopml-s3-registry-<uid>/`` and killed by the next
``start_s3()``; normal exits are covered by an ``atexit`` hook.

This module deliberately does not import pytest; botocore is imported only when used.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = ["S3Bucket", "S3Server", "start_s3"]

HOST = "127.0.0.1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
_POLL_S = 0.05
# S3's bucket naming rules, minus the rarely used dots (they break virtual-host addressing).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_LOG_HEADER = "\n--- tail of the server log (deleted with the run dir) ---\n"


def _server_env(run_dir: Path) -> dict[str, str]:
    # Real credentials, profiles or endpoints of the caller's shell must not reach the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        # Big objects spill here, so stop() deletes them with the run dir.
        TMPDIR=str(run_dir / "tmp"),
        PYTHONUNBUFFERED="1",
    )
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no server log at {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<server log is empty>"


def _create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _same_process(pid: int, created: float) -> bool:
    # A PID alone may have been reused by an unrelated process since it was recorded.
    now = _create_time(pid)
    return now is not None and abs(now - created) < 0.01


def _listening_port(pid: int) -> int | None:
    try:
        proc = psutil.Process(pid)
        # psutil < 6 calls it connections()
        conns = getattr(proc, "net_connections", proc.connections)(kind="tcp4")
    except psutil.Error:
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr.ip == HOST:
            return int(conn.laddr.port)
    return None


def _answers(port: int) -> bool:
    """True once the server handles a real S3 request (ListBuckets)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
    except OSError:
        return False
    finally:
        conn.close()
    return resp.status == 200 and b"ListAllMyBucketsResult" in body


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (moto exits cleanly on it), SIGKILL if that takes too long; reaps the child."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)


# --------------------------------------------------------------------------- orphans


def _registry_dir() -> Path | None:
    """Per-user directory with one record per live server (so orphans can be found)."""
    reg = Path(tempfile.gettempdir()) / f"loopml-s3-registry-{os.geteuid()}"
    try:
        reg.mkdir(mode=0o700, exist_ok=True)
        st = reg.lstat()
    except OSError:
        return None
    if not reg.is_dir() or reg.is_symlink() or st.st_uid != os.geteuid():
        return None  # not ours: do not trust it
    return reg


def _register(server_pid: int, run_dir: Path) -> Path | None:
    reg = _registry_dir()
    server_created = _create_time(server_pid)
    owner_created = _create_time(os.getpid())
    if reg is None or server_created is None or owner_created is None:
        return None
    record = {
        "owner_pid": os.getpid(),
        "owner_created": owner_created,
        "server_pid": server_pid,
        "server_created": server_created,
        "run_dir": str(run_dir),
    }
    entry = reg / f"{uuid.uuid4().hex}.json"
    tmp = entry.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(record))
        tmp.replace(entry)  # readers never see half a record
    except OSError:
        return None
    return entry


def _reap_orphans() -> None:
    """Kill servers whose owning Python process died without stop().

    A killed pytest, os._exit() or a CI timeout skips atexit; its moto server would
    otherwise run on until reboot.
    """
    reg = _registry_dir()
    if reg is None:
        return
    for entry in reg.glob("*.json"):
        try:
            record = json.loads(entry.read_text())
            owner_alive = _same_process(int(record["owner_pid"]), float(record["owner_created"]))
            server_pid = int(record["server_pid"])
            server_alive = _same_process(server_pid, float(record["server_created"]))
            run_dir = Path(record["run_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: leave it alone rather than kill the wrong process
        if owner_alive:
            continue
        if server_alive:
            with contextlib.suppress(psutil.Error):
                server = psutil.Process(server_pid)
                server.kill()
                server.wait(STOP_TIMEOUT_S)
        shutil.rmtree(run_dir, ignore_errors=True)
        entry.unlink(missing_ok=True)


# --------------------------------------------------------------------------- server


@dataclass(frozen=True, slots=True)
class S3Bucket:
    """A bucket on a test server: its ``s3://name`` URI and the fsspec options to reach it."""

    uri: str
    storage_options: dict[str, Any]

    @property
    def name(self) -> str:
        return self.uri.removeprefix("s3://")


@dataclass
class S3Server:
    """A running moto server. Reach it with :meth:`storage_options` or :meth:`client`."""

    endpoint_url: str
    port: int
    pid: int
    log_file: Path
    host: str = HOST
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _run_dir: Path = field(default_factory=Path, repr=False)
    _registry_entry: Path | None = field(default=None, repr=False)
    _client: BaseClient | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def storage_options(self, *, endpoint_url: str | None = None) -> dict[str, Any]:
        """The fsspec/s3fs options for this server: ``fsspec.open(uri, **options)``.

        ``endpoint_url`` replaces the server's own URL, e.g. with a
        :class:`net_proxy.CuttingProxy` in front of it.
        """
        return {
            "endpoint_url": endpoint_url or self.endpoint_url,
            "key": ACCESS_KEY,
            "secret": SECRET_KEY,
            "client_kwargs": {"region_name": REGION},
        }

    def client(self) -> BaseClient:
        """A botocore S3 client for this server (one per server, reused)."""
        if self._stopped:
            raise RuntimeError("S3Server is stopped")
        if self._client is None:
            import botocore.session  # lazily: the module imports without the s3 extra

            self._client = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            )
        return self._client

    def create_bucket(self, name: str) -> str:
        """Create an empty bucket and return its URI, ``s3://name``.

        ``name`` must follow S3's rules (3-63 of ``a-z0-9-``) and must not exist yet: an
        existing name raises, so two tests never share a bucket.
        """
        if not _BUCKET_RE.match(name):
            raise ValueError(
                f"invalid bucket name {name!r}: use 3-63 characters of a-z, 0-9 and '-', "
                "starting and ending with a letter or digit"
            )
        client = self.client()
        # In us-east-1, S3 (and moto) answer 200 to creating a bucket you already own.
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name in existing:
            raise ValueError(f"bucket {name!r} already exists on {self.endpoint_url}")
        client.create_bucket(Bucket=name)
        return f"s3://{name}"

    def delete_bucket(self, name: str) -> None:
        """Abort its multipart uploads, delete every object, then the bucket itself."""
        client = self.client()
        uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """End the server process and delete its files. Idempotent; harmless if it died."""
        if self._stopped:
            return
        self._stopped = True
        _live.pop(id(self), None)
        try:
            if self._client is not None:
                self._client.close()
            if self._proc is not None:
                _kill(self._proc)
        finally:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            if self._registry_entry is not None:
                self._registry_entry.unlink(missing_ok=True)

    def __enter__(self) -> S3Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_live: dict[int, S3Server] = {}  # servers of this process not stopped yet


@atexit.register
def _stop_leftovers() -> None:
    # A test session that forgot stop() (or crashed) must not leave servers behind.
    for server in list(_live.values()):
        with contextlib.suppress(Exception):
            server.stop()


def start_s3(base_dir: Path) -> S3Server:
    """Start moto's S3 server on a free 127.0.0.1 port; see the module docstring.

    Raises:
        RuntimeError: the server exited or did not answer within ``START_TIMEOUT_S``
            (the message holds the tail of its log).
    """
    _reap_orphans()
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="s3-", dir=base_dir))
    log_file = run_dir / "server.log"
    server: S3Server | None = None
    try:
        (run_dir / "tmp").mkdir()
        with log_file.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", "0"],
                cwd=run_dir,
                env=_server_env(run_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in pytest must not kill it under a test
            )
        server = S3Server(
            endpoint_url="",
            port=0,
            pid=proc.pid,
            log_file=log_file,
            _proc=proc,
            _run_dir=run_dir,
            _registry_entry=_register(proc.pid, run_dir),
        )
        _live[id(server)] = server
        deadline = time.monotonic() + START_TIMEOUT_S
        port: int | None = None
        while True:
            if port is None:
                port = _listening_port(proc.pid)
            if port is not None and _answers(port):
                break
            if proc.poll() is not None:
                raise RuntimeError(
                    f"moto server exited with code {proc.returncode} before answering"
                    f"{_LOG_HEADER}{_tail(log_file)}"
                )
            if time.monotonic() >= deadline:
                state = "never listened" if port is None else f"did not answer on port {port}"
                raise RuntimeError(
                    f"moto server {state} within {START_TIMEOUT_S:.0f} s"
                    f"{_LOG_HEADER}{_tail(log_file)}"
                )
            time.sleep(_POLL_S)
        server.port = port
        server.endpoint_url = f"http://{HOST}:{port}"
        return server
    except BaseException:
        # Nothing may be left behind: no process, no files (stop() also removes run_dir).
        if server is not None:
            server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
