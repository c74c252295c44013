"""R22: browser-side attacks on the web UI and the API behind it.

- **Host allow-list** (DNS rebinding): the UI's pages refuse a foreign ``Host`` without auth;
  ``loopml server --allowed-host`` pins the names with auth on too.
- **CSRF**: every unsafe route of the app (enumerated from the app, as the R20 matrix does)
  refuses a cross-site request (foreign ``Origin``, ``Sec-Fetch-Site: cross-site``) even with
  an admin's token or signed-in cookie; ``/api`` writes refuse the body types an HTML form can
  send; UI forms refuse a missing or wrong CSRF field; and in a real Chromium, a page on
  another local origin that auto-submits a form and fires ``fetch`` changes nothing.
- **CORS**: no answer carries ``Access-Control-Allow-Origin``.
- **Framing**: every answer (pages, JSON, static files, error answers) forbids framing, and
  pages carry the ``script-src 'self'`` policy.
- **Sign-in**: a wrong token is explained (401), ``next`` never leaves the server, the
  session cookie is ``HttpOnly`` + ``SameSite=Strict``, and revoking the token signs the
  browser out.

The stored-XSS corpus is in ``test_ui_r22_xss.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from r22_helpers import drop_status_errors, forget_project
from ui_world import World

from conftest import serve, shot, sign_in

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from route_matrix import Endpoint, endpoints  # noqa: E402

EVIL = "https://evil.example"
CSRF = "k" * 43  # a well-formed form token for the cookie and the field
SIMPLE_TYPES = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
)


# --- a fresh store of our own (writes let through by a broken guard would land here) -------


class Fresh:
    def __init__(self, root: Path) -> None:
        from loopml.tracking.client import Client

        self.client = Client(
            store_uri=f"sqlite:///{root / 'store.db'}", artifacts_uri=str(root / "blobs")
        ).open()
        tokens = self.client.metadata.tokens
        self.tokens = {
            role: tokens.create(f"sec-{role}", role, by="test")[1]
            for role in ("reader", "writer", "admin")
        }


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fresh]:
    store = Fresh(tmp_path_factory.mktemp("r22-fresh"))
    yield store
    store.client.close()


@pytest.fixture(scope="module")
def fresh_app(fresh: Fresh) -> Iterator[tuple[Any, str]]:
    from loopml.server.app import create_app
    from loopml.serving.server import serve_background

    app = create_app(fresh.client)
    with serve_background(app) as background:
        yield app, background.url


def _raw(url: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    """One request with exactly these headers (``Host`` included: httpx would set its own)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


# --- Host allow-list ----------------------------------------------------------------------


def test_ui_pages_refuse_a_foreign_host_without_auth(server: str) -> None:
    port = urlsplit(server).port
    for path in ("/", "/runs", "/login", "/static/ui.css"):
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io"):
            status, headers, body = _raw(server, "GET", path, {"Host": host})
            assert status == 400, (path, host, status, body[:200])
            assert b"--allowed-host" in body and headers["x-frame-options"] == "DENY"
        status, _, _ = _raw(server, "GET", path, {"Host": f"127.0.0.1:{port}"})
        assert status in (200, 404), (path, status)  # "/" may still be a placeholder
    status, _, _ = _raw(server, "POST", "/login", {"Host": "evil.example", "Content-Length": "0"})
    assert status == 400


def test_allowed_host_pins_the_host_names_with_auth_on(tmp_path: Path) -> None:
    """``loopml server --auth --allowed-host NAME``, the real command: other names get 400."""
    from cli_runner import run_cli

    assert run_cli("init", "p", cwd=tmp_path, env={"LOOPML_STORE_URI": ""}).returncode == 0
    exe = Path(sys.executable).parent / "loopml"
    proc = subprocess.Popen(
        [str(exe), "server", "--port", "0", "--no-scheduler", "--auth"]
        + ["--allowed-host", "loopml.team.example", "--allowed-host", "Other.Example"],
        cwd=tmp_path / "p",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" on ", 1)[1].split("/api", 1)[0]
        port = urlsplit(url).port
        for host in ("evil.example", f"evil.example:{port}", "team.example"):
            for path in ("/health", "/login", "/api/runs"):
                status, _, body = _raw(url, "GET", path, {"Host": host})
                assert status == 400, (host, path, status)
                assert b"loopml.team.example" in body
        for host in (f"loopml.team.example:{port}", "other.example", f"127.0.0.1:{port}"):
            assert _raw(url, "GET", "/health", {"Host": host})[0] == 200, host
            assert _raw(url, "GET", "/login", {"Host": host})[0] == 200, host
            assert _raw(url, "GET", "/api/runs", {"Host": host})[0] == 401, host  # token next
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    bad = run_cli("server", "--auth", "--allowed-host", "http://x/", cwd=tmp_path / "p")
    assert bad.returncode != 0 and "--allowed-host 'http://x/'" in bad.stderr


# --- CSRF on every unsafe route -----------------------------------------------------------


def _unsafe(app: Any) -> list[Endpoint]:
    found = [e for e in endpoints(app) if e.method in ("POST", "PUT", "PATCH", "DELETE")]
    assert {e.method for e in found} >= {"POST", "DELETE"}, found  # enumeration works
    return found


def _as_admin(endpoint: Endpoint, fresh: Fresh) -> tuple[dict[str, str], dict[str, Any]]:
    """Headers and body of an admin's own request: the bearer token (API) or the signed-in
    cookie with a matching form token (UI)."""
    if endpoint.is_ui:
        cookie = f"loopml_session={fresh.tokens['admin']}; loopml_csrf={CSRF}"
        return {"Cookie": cookie}, {"data": {"csrf": CSRF}}
    return {"Authorization": f"Bearer {fresh.tokens['admin']}"}, {"json": {}}


def _refused_as_csrf(answer: httpx.Response) -> bool:
    if answer.status_code != 403:
        return False
    try:
        return bool(answer.json()["detail"][0]["type"] == "csrf")
    except (ValueError, KeyError, IndexError):
        return False


def test_every_unsafe_route_refuses_cross_site_requests_even_from_an_admin(
    fresh: Fresh, fresh_app: tuple[Any, str]
) -> None:
    app, url = fresh_app
    port = urlsplit(url).port
    cross = [
        {"Origin": EVIL},
        {"Origin": f"http://localhost:{port + 1 if port < 65535 else 1}"},  # another local port
        {"Origin": f"http://127.0.0.1:{port}.evil.example"},
        {"Origin": "null"},  # sandboxed frames, file: pages
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": f"http://127.0.0.1:{port}"},
    ]
    failures, tried = [], 0
    with httpx.Client(base_url=url, timeout=30) as http:
        for endpoint in _unsafe(app):
            headers, body = _as_admin(endpoint, fresh)
            for extra in cross:
                answer = http.request(
                    endpoint.method, endpoint.url, headers={**headers, **extra}, **body
                )
                tried += 1
                if not _refused_as_csrf(answer):
                    failures.append(f"{endpoint.method} {endpoint.template} {extra}: {answer}")
            # The same request from the server's own origin passes the guard (the test has teeth).
            answer = http.request(
                endpoint.method,
                endpoint.url,
                headers={**headers, "Origin": url, "Sec-Fetch-Site": "same-origin"},
                **body,
            )
            if _refused_as_csrf(answer):
                failures.append(f"{endpoint.method} {endpoint.template}: own origin refused")
        # PUT and PATCH too, on every path (the app has few such routes yet; the guard runs
        # before routing, so a route added later is covered as these are).
        for path in sorted({e.url for e in endpoints(app)}):
            for method in ("PUT", "PATCH", "DELETE", "POST"):
                for extra in cross[:1] + cross[4:5]:
                    answer = http.request(
                        method,
                        path,
                        headers={"Authorization": f"Bearer {fresh.tokens['admin']}", **extra},
                        json={},
                    )
                    tried += 1
                    if not _refused_as_csrf(answer):
                        failures.append(f"{method} {path} {extra}: {answer}")
    assert not failures, "\n".join(failures)
    assert tried >= 7 * 20, tried


def test_api_writes_refuse_the_body_types_an_html_form_can_send(
    fresh: Fresh, fresh_app: tuple[Any, str]
) -> None:
    app, url = fresh_app
    api = [e for e in _unsafe(app) if not e.is_ui]
    failures = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for endpoint in api:
            for ctype in SIMPLE_TYPES:
                answer = http.request(
                    endpoint.method,
                    endpoint.url,
                    headers={
                        "Authorization": f"Bearer {fresh.tokens['admin']}",
                        "Content-Type": ctype,
                    },
                    content=b"a=1",
                )
                if not _refused_as_csrf(answer):
                    failures.append(f"{endpoint.method} {endpoint.template} {ctype}: {answer}")
    assert not failures, "\n".join(failures)
    before = fresh.client.metadata.tokens.list()
    answer = httpx.post(
        f"{url}/api/tokens",
        headers={"Authorization": f"Bearer {fresh.tokens['admin']}", "Content-Type": "text/plain"},
        content=json.dumps({"name": "sneaky", "role": "admin"}),
    )
    assert _refused_as_csrf(answer) and fresh.client.metadata.tokens.list() == before
    # The browser's sign-in cookie is no key to the API: only the Authorization header is.
    answer = httpx.post(
        f"{url}/api/tokens",
        headers={"Cookie": f"loopml_session={fresh.tokens['admin']}", "Origin": url},
        json={"name": "sneaky", "role": "admin"},
    )
    assert answer.status_code == 401 and fresh.client.metadata.tokens.list() == before


def test_ui_forms_refuse_a_missing_or_wrong_csrf_field(
    fresh: Fresh, fresh_app: tuple[Any, str]
) -> None:
    app, url = fresh_app
    ui = [e for e in _unsafe(app) if e.is_ui]
    assert ("POST", "/logout") in {(e.method, e.template) for e in ui}
    failures = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for endpoint in ui:
            cookie = f"loopml_session={fresh.tokens['admin']}; loopml_csrf={CSRF}"
            same = {"Cookie": cookie, "Origin": url}  # the guard lets it through: the field decides
            form: dict[str, str] = (
                {"token": fresh.tokens["admin"]} if "login" in endpoint.url else {}
            )
            for field in (None, "", "x" * 43, CSRF[:-1], CSRF + "k"):
                data = dict(form) if field is None else {**form, "csrf": field}
                answer = http.request(endpoint.method, endpoint.url, headers=same, data=data)
                if answer.status_code != 403 or "loopml_session" in answer.headers.get(
                    "set-cookie", ""
                ):
                    failures.append(
                        f"{endpoint.method} {endpoint.template} csrf={field!r}: {answer}"
                    )
            # No CSRF cookie at all (a fresh browser), the field guessed.
            answer = http.request(
                endpoint.method,
                endpoint.url,
                headers={"Cookie": f"loopml_session={fresh.tokens['admin']}", "Origin": url},
                data={**form, "csrf": CSRF},
            )
            if answer.status_code != 403:
                failures.append(f"{endpoint.method} {endpoint.template} without cookie: {answer}")
            # Control: the right field passes the check.
            answer = http.request(
                endpoint.method, endpoint.url, headers=same, data={**form, "csrf": CSRF}
            )
            if answer.status_code == 403:
                failures.append(f"{endpoint.method} {endpoint.template}: right field refused")
    assert not failures, "\n".join(failures)


# --- CORS and framing ---------------------------------------------------------------------


def _every_answer(app: Any, url: str, known: dict[str, str]) -> list[str]:
    """A URL for every GET route of the app, plus static files and error answers."""
    from importlib.resources import files

    paths = [e.url for e in endpoints(app, known) if e.method == "GET"]
    static = files("loopml.server.ui") / "static"
    paths += [f"/static/{f.name}" for f in static.iterdir() if f.is_file()]
    paths += [
        "/no-such-page",
        "/static/no-such.css",
        "/api/no-such",
        "/runs?filter=" + quote("bogus > 1"),
        "/runs?limit=0",
        "/api/runs?limit=-1",
        "/runs/zz-no-such",
        "/login?next=//evil.example",
    ]
    return sorted(set(paths))


def test_no_answer_allows_another_origin_and_none_can_be_framed(server: str, world: World) -> None:
    from loopml.server.app import create_app

    client = world.client()
    app = create_app(client)
    known = {"name": "diabetes", "run": world.runs["train#1"], "ref": world.runs["train#1"]}
    paths = _every_answer(app, server, known)
    client.close()
    failures = []
    with httpx.Client(base_url=server, timeout=30) as http:
        for path in paths:
            for method, extra in (
                ("GET", {"Origin": EVIL}),
                ("GET", {"Origin": "null"}),
                ("OPTIONS", {"Origin": EVIL, "Access-Control-Request-Method": "DELETE"}),
                ("OPTIONS", {"Origin": server, "Access-Control-Request-Method": "POST"}),
            ):
                answer = http.request(method, path, headers=extra)
                problems = []
                if any(k.lower().startswith("access-control-allow") for k in answer.headers):
                    problems.append("Access-Control-Allow-*")
                if answer.headers.get("x-frame-options") != "DENY":
                    problems.append("no X-Frame-Options DENY")
                if "frame-ancestors 'none'" not in answer.headers.get(
                    "content-security-policy", ""
                ):
                    problems.append("no frame-ancestors 'none'")
                if answer.headers.get("x-content-type-options") != "nosniff":
                    problems.append("no nosniff")
                page = answer.headers.get("content-type", "").startswith("text/html")
                if page and not path.startswith("/api/"):
                    policy = answer.headers.get("content-security-policy", "")
                    if "script-src 'self'" not in policy or "unsafe-inline' ;" in policy:
                        problems.append(f"page policy {policy!r}")
                if problems:
                    failures.append(f"{method} {path} ({answer.status_code}): {problems}")
    assert not failures, "\n".join(failures)
    assert len(paths) >= 30, paths


def test_an_unexpected_server_error_is_not_framable_either(fresh: Fresh) -> None:
    from loopml.server.app import create_app
    from loopml.serving.server import serve_background

    app = create_app(fresh.client)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with serve_background(app) as background:
        status, headers, _ = _raw(
            background.url, "GET", "/boom", {"Host": urlsplit(background.url).netloc}
        )
    assert status == 500
    assert headers.get("x-frame-options") == "DENY", headers
    assert "access-control-allow-origin" not in headers


# --- a real browser on another local origin -----------------------------------------------


class _Attacker(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.page if self.path == "/" else ATTACK_JS
        self.send_response(200)
        self.send_header(
            "Content-Type", "text/html" if self.path == "/" else "application/javascript"
        )
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


ATTACK_JS = b"""
document.getElementById("form").submit();
document.getElementById("api-form").submit();
const done = [];
const api = document.body.dataset.api;
fetch(api, {method: "DELETE", credentials: "include"}).then(
  r => done.push("delete " + r.status), e => done.push("delete blocked"));
fetch(api + "/pause", {method: "POST", mode: "no-cors", credentials: "include",
  headers: {"Content-Type": "text/plain"}, body: "{}"}).then(
  r => done.push("pause sent"), e => done.push("pause blocked"));
setTimeout(() => { document.title = "done: " + done.join(", "); }, 1500);
"""


#: Path parameters of the UI's pause route besides the schedule's name.
PARAMS = {"pipeline": "train"}


def _ui_pause_route(app: Any) -> str | None:
    """The web UI's pause button's route (``POST .../{name}/pause``), once a page has one."""
    for e in endpoints(app):
        if e.method == "POST" and e.is_ui and e.template.endswith("/pause"):
            return e.template
    return None


def test_a_page_on_another_origin_cannot_pause_or_delete_a_schedule(
    page: Any, browser_world: World, watch: Any
) -> None:
    from loopml.server.app import create_app

    client = browser_world.client()
    template = _ui_pause_route(create_app(client))
    with serve(browser_world) as background:
        base = background.url
        sign_in(page, base, browser_world.tokens["admin"], "/runs")  # the victim is signed in
        # The UI's pause button once the pipelines page has one; until then the API's route.
        ui_pause = (
            re.sub(r"\{([^}:]+)[^}]*\}", lambda m: PARAMS.get(m[1], "nightly"), template)
            if template
            else "/api/schedules/nightly/pause"
        )
        _Attacker.page = f"""<!doctype html><title>win a prize</title>
<body data-api="{base}/api/schedules/nightly">
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="form" method="post" action="{base}{ui_pause}" target="sink1">
  <input name="csrf" value="{CSRF}"></form>
<form id="api-form" method="post" action="{base}/api/schedules/nightly/pause" target="sink2">
  <input name="x" value="1"></form>
<script src="/attack.js"></script></body>""".encode()
        sent: list[tuple[str, str]] = []
        page.on(
            "request",
            lambda r: sent.append((r.method, r.url)) if r.url.startswith(base) else None,
        )
        attacker = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
        thread = threading.Thread(target=attacker.serve_forever, daemon=True)
        thread.start()
        try:
            # localhost:OTHER and 127.0.0.1:PORT: both loopback, different origins (and sites).
            page.goto(f"http://localhost:{attacker.server_address[1]}/")
            page.wait_for_function("document.title.startsWith('done')", timeout=20_000)
            title = page.title()
        finally:
            attacker.shutdown()
            attacker.server_close()
        shot(page, "r22-attacker-page")
        # The browser did send the forms (the guard, not the browser, stopped them) …
        posted = {url.removeprefix(base) for method, url in sent if method == "POST"}
        assert {ui_pause, "/api/schedules/nightly/pause"} <= posted, (sent, title)
        # … and nothing changed: the schedule is still there and still enabled.
        record = client.metadata.schedules.find("nightly")
        assert record is not None and not record.paused, (record, title)
        # The refused answers and CORS failures are logged by Chromium as console errors.
        assert all(
            "403" in e or "CORS" in e or "frame" in e.lower() or "Failed to load" in e
            for e in watch.console_errors
        ), watch.console_errors
        watch.console_errors.clear()
        # The victim's own page still works and still shows the schedule's pipeline runs.
        page.goto(f"{base}/runs")
        assert page.locator("table.runs").count() == 1
    client.close()


# --- signing in ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A small store of this module's own (tokens revoked, a schedule attacked)."""
    from ui_world import cli

    from loopml.config import load_settings
    from loopml.pipelines.discovery import find_pipeline, project_on_path
    from loopml.scheduler import schedules
    from loopml.tracking.client import Client

    parent = tmp_path_factory.mktemp("r22-browser")
    cli(parent, "init", "shop")
    root = parent / "shop"
    (root / "pipelines.py").write_text(
        "from loopml import pipeline, step\n\n@step\ndef one(x: float) -> float:\n"
        "    return x\n\n@pipeline(name='train')\ndef train(x: float = 1.0) -> None:\n"
        "    one(x)\n"
    )
    client = Client(load_settings(root), readonly=False).open()
    project_on_path(root)
    find_pipeline(client.settings, "train").run({"x": 2.0}, client=client)
    schedules.add(
        client, schedules.make_record("nightly", pipeline="train", cron="0 2 * * *", by="test")
    )
    world = World(root=root, runs={})
    for role in ("reader", "writer", "admin"):
        world.tokens[role] = client.metadata.tokens.create(f"b-{role}", role, by="test")[1]
    client.close()
    yield world
    forget_project(root)


@pytest.fixture(scope="module")
def browser_auth_server(browser_world: World) -> Iterator[str]:
    with serve(browser_world, auth=True) as background:
        yield background.url


def test_a_wrong_token_is_explained_with_401(
    page: Any, browser_auth_server: str, watch: Any
) -> None:
    base = browser_auth_server
    page.goto(f"{base}/runs")
    assert page.url.startswith(f"{base}/login?next=")
    page.fill("input[name=token]", "lm_not-a-real-token")
    with page.expect_response(lambda r: r.url == f"{base}/login") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    problem = page.locator(".problem").inner_text()
    assert "unknown, revoked or expired" in problem and "loopml token create" in problem
    shot(page, "r22-login-wrong-token")
    drop_status_errors(watch)  # Chromium logs the page's own 401 status


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        " //evil.example",
    ],
)
def test_sign_in_never_redirects_off_the_server(
    page: Any, browser_auth_server: str, browser_world: World, target: str, watch: Any
) -> None:
    base = browser_auth_server
    page.goto(f"{base}/login?next={quote(target, safe='')}")
    page.fill("input[name=token]", browser_world.tokens["reader"])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert urlsplit(page.url).netloc == urlsplit(base).netloc, page.url
    assert urlsplit(page.url).path in ("/", "/runs") or page.url.startswith(base + "/"), page.url
    drop_status_errors(watch)  # "/" (where it lands) may still be a placeholder (404)


def test_the_session_cookie_is_http_only_and_same_site_strict(
    page: Any, browser_auth_server: str, browser_world: World
) -> None:
    sign_in(page, browser_auth_server, browser_world.tokens["reader"], "/runs")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session, csrf = cookies["loopml_session"], cookies["loopml_csrf"]
    assert session["httpOnly"] and session["sameSite"] == "Strict", session
    assert csrf["httpOnly"] and csrf["sameSite"] == "Strict", csrf
    visible = page.evaluate("document.cookie")  # page scripts see neither
    assert "loopml_session" not in visible and "loopml_csrf" not in visible, visible


def test_revoking_the_token_signs_the_browser_out(
    page: Any, browser_auth_server: str, browser_world: World
) -> None:
    base = browser_auth_server
    client = browser_world.client()
    name = f"short-lived-{time.monotonic_ns()}"
    _, secret = client.metadata.tokens.create(name, "writer", by="test")
    sign_in(page, base, secret, "/runs")
    assert page.locator("table.runs").count() == 1
    client.metadata.tokens.revoke(name)
    client.close()
    page.reload()
    assert urlsplit(page.url).path == "/login", page.url
    assert page.locator("input[name=token]").count() == 1
