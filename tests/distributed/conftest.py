"""Fixtures for the Ray tests: one real two-node cluster per test session, one project per module.

``ray_cluster`` starts a head node (20 CPUs) and a worker node (2 CPUs, custom resource
``special``) on 127.0.0.1 (``tests/ray_cluster.py``) once per session, ~30 s. Every Ray test
module sets ``pytestmark = pytest.mark.xdist_group("ray")`` so that under ``pytest -n 2
--dist loadgroup`` one xdist worker owns the cluster. Teardown disconnects this process, then
checks that every socket the cluster had was on loopback, and that stopping it left none of
its processes behind.

This process holds one Ray Client connection at a time (process-global; the executor
reconnects, ~3-4 s, when the project folder changes), so each module uses ONE project folder
(``project`` is overridden here: the module's folder, made once by ``ray_project``), and
``client`` is a SQLite store only: its absolute path is shared with the workers, which run on
this machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))

from ray_helpers import disconnect_ray, run_loopml  # noqa: E402

from ray_cluster import RayCluster, start_ray_cluster  # noqa: E402

LOOPBACK = ("127.0.0.1", "::ffff:127.0.0.1")


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    # The cluster has no token auth (tests/ray_cluster.py); neither do this process's clients.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    cluster = start_ray_cluster(tmp_path_factory.mktemp("ray"))
    try:
        yield cluster
    finally:
        disconnect_ray()
        sockets = cluster.sockets()
        cluster.stop()
        left = cluster.processes()
    elsewhere = [s for s in sockets if s[1] not in LOOPBACK]
    assert sockets, "the cluster had no TCP socket at all: sockets() found nothing to check"
    assert not elsewhere, f"Ray sockets off loopback: {elsewhere}"
    assert not left, f"cluster processes still alive after stop(): {left}"


def make_project(root: Path, modules: dict[str, str]) -> Path:
    """A project folder with ``loopml.toml`` naming ``modules`` (module name -> source)."""
    root.mkdir(parents=True, exist_ok=True)
    names = ", ".join(f'"{name}"' for name in modules)
    (root / "loopml.toml").write_text(f'[project]\nname = "t"\npipelines = [{names}]\n')
    for name, source in modules.items():
        (root / f"{name}.py").write_text(source)
    return root


@pytest.fixture(scope="module")
def ray_project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's project: ``PIPELINES`` (module name -> source) of the test module, or the
    ``loopml init`` template when the module sets ``INIT_PROJECT = True``."""
    base = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    if getattr(request.module, "INIT_PROJECT", False):
        done = run_loopml("init", "proj", cwd=base)
        assert done.returncode == 0, done.stderr
        root = base / "proj"
        extra: dict[str, str] = getattr(request.module, "PIPELINES", {})
        for name, source in extra.items():  # appended to the template's module
            with (root / f"{name}.py").open("a") as f:
                f.write(source)
        return root
    return make_project(base / "proj", request.module.PIPELINES)


@pytest.fixture(autouse=True)
def project(ray_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test of a module runs in the module's project (overrides tests/conftest.py)."""
    for var in ("LOOPML_STORE_URI", "LOOPML_ARTIFACTS_URI", "LOOPML_REMOTE_URL", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LOOPML_HEARTBEAT_SECONDS", "0.5")
    monkeypatch.chdir(ray_project)
    from loopml.tracking import client as client_module

    client_module._clients.clear()
    return ray_project


@pytest.fixture
def client(project: Path) -> Iterator[Any]:
    """The project's own client (SQLite store under the project, absolute path)."""
    from loopml.config import load_settings
    from loopml.tracking.client import Client

    settings = load_settings()
    assert settings.store_uri.startswith("sqlite:///"), settings.store_uri
    c = Client(settings).open()
    yield c
    c.close()


@pytest.fixture
def pipeline_of(client: Any) -> Callable[[str], Any]:
    """The project's pipeline ``name`` (imported from the project's modules)."""
    from loopml.pipelines.discovery import find_pipeline

    return lambda name: find_pipeline(client.settings, name)
