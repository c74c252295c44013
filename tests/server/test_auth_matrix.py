"""R20: every route × every kind of caller, on an auth-on and a loopback (auth-off) server.

Routes are enumerated from the app at test time (``route_matrix.endpoints``), so whatever
routes exist when this runs are covered. Also: the checker itself flags a route that lacks
the auth dependency; the store holds only hashes of the secrets; and the comparison of
secrets is constant-time (a static check of the two modules that touch them).
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import iter_route_contexts
from route_matrix import CALLERS, PUBLIC, check, endpoints, is_ui_path, make_tokens

from loopml.server.app import create_app
from loopml.server.auth import authorize
from loopml.serving.server import serve_background

SRC = Path(__file__).resolve().parents[2] / "src" / "loopml"


def fill_store(client: Any) -> dict[str, str]:
    """Two runs with params, metrics and an artifact; their ids by path parameter name."""
    runs = []
    for alpha in (0.1, 0.5):
        with client.start_run("train") as run:
            run.log_params({"alpha": alpha})
            run.log_metrics({"rmse": 3.0 - alpha})
            digest = run.log_artifact({"weights": [alpha, 1.0]}, name="model")
            runs.append(run.id)
    return {"run": runs[0], "run_id": runs[0], "digest": digest, "ref": runs[0]}


def test_every_route_refuses_callers_without_the_role(client: Any) -> None:
    known = fill_store(client)
    secrets = make_tokens(client)
    report = []
    for auth in (True, False):
        app = create_app(client, auth=auth)
        with serve_background(app) as server:
            routes, failures = check(app, server.url, secrets, auth=auth, known=known)
        total = sum(len(c.methods or {"GET"}) for c in iter_route_contexts(app.routes))
        report.append(
            f"auth {'on' if auth else 'off'}: routes covered {len(routes)} / {total}, "
            f"calls {len(routes) * len(CALLERS)}, failures {len(failures)}"
        )
        assert len(routes) == total
        assert not failures, "\n".join(str(f) for f in failures)
    print("\nR20 " + "; ".join(report))
    # The routes this issue promises are among those checked, with the roles it promises.
    roles = {(e.method, e.template): e.needed for e in endpoints(app)}
    assert roles[("GET", "/api/runs")] == "reader"
    assert roles[("POST", "/api/tokens")] == "admin"
    assert roles[("GET", "/api/openapi.json")] == "reader"
    assert roles[("GET", "/api/docs")] == "reader"


def test_every_route_but_health_depends_on_authorize(client: Any) -> None:
    """API routes depend on ``authorize``; web UI pages on ``can_read``, its buttons on
    ``writer`` or ``admin`` (the sign-in form and the static files are public)."""
    from loopml.server.ui import session

    app = create_app(client, auth=True)
    unguarded = []
    for c in iter_route_contexts(app.routes):
        if not hasattr(c, "dependant"):
            continue  # the static files' mount (in PUBLIC)
        methods = sorted(c.methods or ())
        if all((m, c.path) in PUBLIC for m in methods):
            continue
        calls = {d.call for d in c.dependant.dependencies}
        if not is_ui_path(c.path):
            needed = {authorize}
        elif set(methods) <= {"GET", "HEAD"}:
            needed = {session.can_read}
        else:
            needed = {session.writer, session.admin}
        if not calls & needed:
            unguarded.append(f"{methods} {c.path}")
    assert unguarded == []


@pytest.mark.parametrize("auth", [True, False])
def test_the_checker_flags_a_route_added_without_the_dependency(client: Any, auth: bool) -> None:
    app = create_app(client, auth=auth)

    @app.post("/api/unguarded-write")
    def unguarded_write() -> dict[str, str]:
        return {"changed": "yes"}

    @app.get("/internal/debug")
    def unguarded_read() -> dict[str, str]:
        return {"secret": "yes"}

    bare = APIRouter(prefix="/api")  # an /api router someone built without the dependency

    @bare.get("/bare", openapi_extra={"x-role": "admin"})
    def bare_admin() -> dict[str, str]:
        return {"admin": "yes"}

    app.include_router(bare)
    with serve_background(app) as server:
        _, failures = check(app, server.url, make_tokens(client), auth=auth, known={})
    flagged = {(f.endpoint.method, f.endpoint.template) for f in failures}
    # Flagged with auth off too: a revoked token is let through where it must get 401. A
    # page outside /api reads like a web UI page, open on loopback without auth; with auth on
    # it is flagged (and the static check above flags it in both modes).
    assert flagged == {
        ("POST", "/api/unguarded-write"),
        ("GET", "/api/bare"),
    } | ({("GET", "/internal/debug")} if auth else set())


def test_the_store_holds_only_hashes_of_the_secrets(client: Any) -> None:
    secrets = make_tokens(client)
    app = create_app(client, auth=True)
    with serve_background(app) as server, httpx.Client(base_url=server.url) as http:
        admin = {"Authorization": f"Bearer {secrets['admin']}"}
        made = http.post("/api/tokens", json={"name": "over-http", "role": "reader"}, headers=admin)
        assert made.status_code == 201
        secrets["over-http"] = made.json()["token"]
        for secret in secrets.values():  # every secret used once, so last_used_at is written
            http.get("/api/whoami", headers={"Authorization": f"Bearer {secret}"})
    hits, scanned = scan_text_columns(client, list(secrets.values()))
    assert scanned > 20 and hits == []
    hashes = {
        row[0] for row in client.metadata.db.read(lambda tx: tx.all("SELECT hash FROM api_tokens"))
    }
    assert {hashlib.sha256(s.encode()).hexdigest() for s in secrets.values()} <= hashes
    path = client.metadata.db.sqlite_path
    if path is not None:  # the raw database files too (WAL included), not only SQL's view
        for file in path.parent.glob(path.name + "*"):
            data = file.read_bytes()
            assert not [s for s in secrets.values() if s.encode() in data], file


def scan_text_columns(client: Any, needles: list[str]) -> tuple[list[str], int]:
    """``table.column`` of every text column holding any needle, and how many were scanned."""
    db = client.metadata.db
    if db.is_sqlite:
        tables = [
            r[0]
            for r in db.read(
                lambda tx: tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")
            )
        ]
        columns = [
            (t, c[1])
            for t in tables
            for c in db.read(lambda tx, t=t: tx.all(f'PRAGMA table_info("{t}")'))
        ]
        probe = 'SELECT COUNT(*) FROM "{t}" WHERE instr(CAST("{c}" AS TEXT), ?) > 0'
    else:
        columns = db.read(
            lambda tx: tx.all(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema "
                "= current_schema() AND data_type IN ('text', 'character varying', 'character', "
                "'json', 'jsonb')"
            )
        )
        probe = 'SELECT COUNT(*) FROM "{t}" WHERE strpos("{c}"::text, ?) > 0'
    hits = []
    for table, column in columns:
        sql = probe.format(t=table, c=column)
        for needle in needles:
            if db.read(lambda tx, sql=sql, needle=needle: tx.scalar(sql, (needle,))):
                hits.append(f"{table}.{column}")
    return hits, len(columns)


def _compare_ops(path: Path) -> tuple[set[str], list[str]]:
    """Constant-time compare calls, and ``==``/``!=`` comparisons that involve a secret."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls, unsafe = set(), []
    secretish = ("secret", "hash", "token", "digest", "wanted")
    for node in ast.walk(tree):
        is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if is_call and node.func.attr == "compare_digest":  # type: ignore[attr-defined]
            calls.add(ast.unparse(node.func))  # type: ignore[attr-defined]
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
        ):
            names = [ast.unparse(x).lower() for x in [node.left, *node.comparators]]
            if any(word in name for name in names for word in secretish):
                unsafe.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return calls, unsafe


def test_secrets_are_compared_in_constant_time() -> None:
    calls, unsafe = _compare_ops(SRC / "store" / "tokens.py")
    assert calls & {"hmac.compare_digest", "secrets.compare_digest"}
    _, unsafe_auth = _compare_ops(SRC / "server" / "auth.py")
    assert unsafe + unsafe_auth == []


def test_the_static_check_catches_a_plain_comparison(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def ok(row, wanted):\n    return row[0] == wanted\n")
    assert _compare_ops(bad)[1] == ["bad.py:2: row[0] == wanted"]
