"""R22: a stored-XSS corpus in every field a user controls, opened page by page in Chromium.

A store of this module's own holds the payloads in run names, tags (keys and values),
pipeline params, logged metric keys, a CSV dataset's column headers (and so a suite's and
a model's input schema, and the features a monitor names in its alerts and charts), a
monitor rule's text, a model's description and tags, and schedule params. Every page
of the UI that exists is opened (the list below, plus every other GET page the app has,
enumerated from its routes): no dialog fires (the ``page`` fixture fails on one, and on the
console error a blocked inline script would log), no element, attribute or link from a
payload exists in the DOM, template syntax renders literally, and the payloads read as text.

"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from r22_helpers import drop_status_errors, forget_project
from ui_world import World, cli

from conftest import serve, shot

#: Each payload is stored everywhere it fits; ``tpl:…:tpl`` marks template expressions
#: (rendered, they would read ``tpl:49:tpl``).
PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><img src=x onerror=alert(2)>",
    "<svg onload=alert(1)>",
    "javascript:alert(1)",
    "tpl:{{7*7}}:tpl",
    "tpl:${7*7}:tpl",
    "tpl:{% print(7*7) %}:tpl",
    "</title><script>alert(1)</script>",
    "'-alert(1)-'",
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    '<a href="javascript:alert(1)">click me</a>',
    "<details open ontoggle=alert(1)>",
    "</textarea><script>alert(1)</script>",
    '" onmouseover="alert(1)" x="',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(3)>",
    '<object data="javascript:alert(1)"></object>',
    "</script><script>alert(1)</script>",
    '<base href="http://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=http://evil.example/">',
    "<style>*{display:none}</style>",
    "\u202egnp.exe \u2028 \ufffd replacement and RTL override",
    "bad \ud800 <b>text</b>",  # not valid Unicode: refused as a name, kept escaped as a value
    "<img src=x onerror=alert(100)>" + "A" * 100_000,  # a 100 KB string
]
LONE_SURROGATE = PAYLOADS[-2]
BIG = PAYLOADS[-1]


def stored(payload: str) -> str:
    """The text the store keeps for a value (a lone surrogate becomes its escaped bytes)."""
    return payload.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace")


PIPELINES = '''"""R22 payloads, logged by a real pipeline run."""
import loopml
from loopml import pipeline, step
from loopml.errors import InvalidParameterError


@step
def poison(note: str) -> float:
    try:
        loopml.log_metric(note, 1.0)  # a metric KEY holding the payload
    except InvalidParameterError:
        pass  # a key the library refuses (too long) is not stored, so not shown
    loopml.log_metric("score", float(len(note)))
    return float(len(note))


@pipeline(name="xss")
def xss(note: str = "x") -> None:
    poison(note)
'''

#: A 100 KB unbroken value (``/runs/{big}``, ``/models/xss-big``) once kept Chromium busy for
#: 35-70 s shaping one long word: the pages now cut long values short.
#: The pages of the brief; ``{run}``/``{run2}`` are run ids.
PAGES = [
    "/",
    "/runs",
    "/runs?columns=params.note,metrics.score",
    "/runs?filter=" + quote("params.note = '<script>alert(1)</script>'"),
    "/runs?filter=" + quote("<script>alert(1)</script>"),  # a bad filter, echoed in the problem
    "/runs/{run}",
    "/runs/{big}",
    "/runs/compare?run={run}&run={run2}",
    "/pipelines",
    "/pipelines/xss",
    "/models",
    "/models/xss",
    "/models/xss-big",
    "/datasets",
    "/datasets/xss",
    "/evaluations",
    "/evaluations/xss",
    "/monitors",
    "/monitors/xss",
    "/monitors/xss/windows/{window}",
    "/login?next=" + quote('"><script>alert(1)</script>'),
    "/no-such-<script>alert(1)</script>",
]

#: What must not exist in any page's DOM: script that is not the server's own, elements and
#: attributes a payload would create, links that run code.
AUDIT = """() => {
  const bad = [];
  const own = (u) => { try { const x = new URL(u, location.href);
      return x.origin === location.origin && x.pathname.startsWith('/static/'); }
    catch (e) { return false; } };
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    for (const a of el.attributes) {
      const name = a.name.toLowerCase();
      const value = a.value.replace(/[\\s\\x00-\\x1f]/g, '').toLowerCase();
      if (name.startsWith('on')) bad.push(tag + ' ' + name);
      if (name === 'srcdoc') bad.push(tag + ' srcdoc');
      if (['href', 'src', 'action', 'formaction', 'data', 'xlink:href'].includes(name)
          && value.startsWith('javascript:')) bad.push(tag + ' ' + name + '=javascript:');
    }
    if (tag === 'script' && !own(el.getAttribute('src') || '')) bad.push('script '
        + el.outerHTML.slice(0, 80));
    if (['iframe', 'frame', 'object', 'embed', 'base'].includes(tag))
      bad.push(tag);
    if (tag === 'meta' && el.hasAttribute('http-equiv')) bad.push('meta http-equiv');
    if (tag === 'img' && el.getAttribute('src') === 'x') bad.push('img src=x');
    if (tag === 'svg' && el.hasAttribute('onload')) bad.push('svg onload');
    if (tag === 'style' && el.textContent.includes('display:none')) bad.push('style');
  }
  return bad;
}"""


class XssWorld(World):
    run_ids: list[str]
    window: float  # the start of a window of monitor "xss"


#: A monitor rule on one feature named by a payload (a rule's text cannot hold parentheses).
RULE_PAYLOAD = '<base href="http://evil.example/">'
MONITOR_WINDOWS = 3


def monitor(client: Any, root: Path, model: Any, frame: Any, headers: list[str]) -> float:
    """Monitor ``xss`` over logged predictions whose inputs are the payload columns, moved
    from the second window on: its alerts name the payload features. Returns the start of
    the newest window."""
    import json
    import time

    from loopml.monitoring import add_monitor, run_monitor
    from loopml.store.predictions import PredictionRow

    t0 = (time.time() // 3600) * 3600 - MONITOR_WINDOWS * 3600
    rows = []
    for w in range(MONITOR_WINDOWS):
        inputs = frame[headers].sample(120, replace=True, random_state=w) + (10.0 if w else 0.0)
        predicted = model.predict(inputs)
        for i, (_, row) in enumerate(inputs.iterrows()):
            rows.append(
                PredictionRow(
                    f"x{w}-{i}", "xss", 1, "xss@latest", t0 + w * 3600 + i,
                    json.dumps(row.to_dict()), json.dumps({"prediction": float(predicted[i])}),
                )
            )  # fmt: skip
    client.metadata.predictions.add(rows)
    rules = root / "xss-rules.toml"
    rules.write_text(
        '[rules]\nfeature_drift = "psi(*) > 0.25"\n'
        f"payload = {json.dumps(f'psi({RULE_PAYLOAD!r}) > 0.1')}\n"
    )
    add_monitor(
        "xss", model="xss", reference="xss@1", window="1h", start=t0, rules=rules, client=client
    )
    report = run_monitor("xss", until=t0 + MONITOR_WINDOWS * 3600, client=client)
    fired = {a.rule for a in report.alerts}
    assert fired == {"feature_drift", "payload"}, fired
    return report.evaluated[-1].start


@pytest.fixture(scope="module")
def xss_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XssWorld]:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import loopml
    from loopml.config import load_settings
    from loopml.errors import InvalidParameterError
    from loopml.pipelines.discovery import find_pipeline, project_on_path
    from loopml.scheduler import schedules
    from loopml.tracking.client import Client

    parent = tmp_path_factory.mktemp("r22-xss")
    cli(parent, "init", "xss")
    root = parent / "xss"
    (root / "pipelines.py").write_text(PIPELINES)
    client = Client(load_settings(root), readonly=False).open()
    project_on_path(root)
    pipe = find_pipeline(client.settings, "xss")
    world = XssWorld(root=root, runs={})
    world.run_ids = []
    for i, payload in enumerate(PAYLOADS):
        run = pipe.run({"note": payload}, client=client, tags={"payload": payload})
        world.run_ids.append(run.id)
        if payload == LONE_SURROGATE:  # not valid Unicode: refused as a name or a key
            with pytest.raises(InvalidParameterError, match="lone surrogate"):
                client.rename_run(run.id, payload)
            with pytest.raises(InvalidParameterError, match="lone surrogate"):
                client.tag_run(run.id, {payload: "key"})
            continue
        client.rename_run(run.id, payload[:200])  # names hold at most 200 characters
        if len(payload) <= 200:
            client.tag_run(run.id, {payload: f"tag key {i}"})

    headers = [p for p in PAYLOADS if p not in (BIG, LONE_SURROGATE)]
    frame = pd.DataFrame({p: [float(i * j % 7) for j in range(40)] for i, p in enumerate(headers)})
    frame["y"] = [float(j) for j in range(40)]
    (root / "xss.csv").write_text(frame.to_csv(index=False))
    loopml.add_dataset(root / "xss.csv", name="xss", client=client)
    model = LinearRegression().fit(frame[headers], frame["y"])
    loopml.register(
        "xss",
        model,
        X=frame[headers],
        description=" ".join(headers),
        tags={f"t{i}": p for i, p in enumerate(headers)},
        client=client,
    )
    loopml.register("xss-big", model, description=BIG, tags={"big": BIG}, client=client)
    suite, _ = loopml.create_suite(
        "xss", data="xss@1", target="y", task="regression", client=client
    )
    suite.evaluate(model, resamples=20)
    world.window = monitor(client, root, model, frame, headers)
    for i, payload in enumerate(PAYLOADS):
        if payload == LONE_SURROGATE:  # the schedule would hold it: refused
            with pytest.raises(InvalidParameterError, match="lone surrogate"):
                schedules.make_record(
                    "bad", pipeline="xss", cron="0 2 * * *", params={"n": payload}
                )
            continue
        record = schedules.make_record(
            f"xss-{i}", pipeline="xss", cron="0 2 * * *", params={"note": payload}, by="test"
        )
        schedules.add(client, record)
    for role in ("reader", "writer", "admin"):
        world.tokens[role] = client.metadata.tokens.create(f"x-{role}", role, by="test")[1]
    client.close()
    yield world
    forget_project(root)


@pytest.fixture(scope="module")
def xss_server(xss_world: XssWorld) -> Iterator[str]:
    with serve(xss_world) as background:
        yield background.url


def _fill(path: str, world: XssWorld) -> str:
    return path.format(
        run=world.run_ids[0],
        run2=world.run_ids[1],
        big=world.run_ids[-1],
        window=int(world.window),
    )


def _check(page: Any, base: str, path: str, watch: Any) -> set[int]:
    """Open one page; assert nothing from a payload runs or exists; the payloads it shows."""
    answer = page.goto(base + path)
    status = answer.status
    text = page.locator("body").inner_text()
    assert status < 500, (path, status)
    policy = answer.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, policy
    bad = page.evaluate(AUDIT)
    assert not bad, (path, bad)
    assert "tpl:49:tpl" not in text and "tpl:49" not in page.content()
    flat = " ".join(text.split())
    if status >= 400:
        drop_status_errors(watch)  # the page's own status; a script's errors would differ
    return {i for i, p in enumerate(PAYLOADS) if " ".join(stored(p).split())[:16] in flat}


@pytest.mark.parametrize("path", PAGES)
def test_no_payload_runs_on_the_page(
    page: Any, xss_server: str, xss_world: XssWorld, watch: Any, path: str
) -> None:
    shown = _check(page, xss_server, _fill(path, xss_world), watch)
    name = path.split("?")[0].strip("/").replace("/", "-").replace("{", "").replace("}", "")
    if not path.startswith(("/no-such", "/login")) and "?" not in path:
        shot(page, f"r22-xss-{name or 'home'}")
    if path in ("/runs", "/runs/{run}", "/models/xss", "/datasets/xss", "/monitors/xss"):
        assert shown, f"{path} shows none of the payloads as text"
    if path == "/monitors/xss":  # the payload feature, in a rule's text and its alerts
        assert PAYLOADS.index(RULE_PAYLOAD) in shown
    if path == "/runs":
        # The run names (and params) of every stored payload read as plain text.
        assert shown == set(range(len(PAYLOADS))), sorted(set(range(len(PAYLOADS))) - shown)


def test_every_other_page_of_the_app_too(
    page: Any, xss_server: str, xss_world: XssWorld, watch: Any
) -> None:
    """Pages added later (a model version, a schedule …) are enumerated from the app."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
    from route_matrix import endpoints

    from loopml.server.app import create_app

    client = xss_world.client()
    app = create_app(client)
    client.close()
    known = {
        "name": "xss",
        "suite": "xss",
        "model": "xss",
        "dataset": "xss",
        "pipeline": "xss",
        "schedule": "xss-0",
        "run": xss_world.run_ids[0],
        "run_id": xss_world.run_ids[0],
        "ref": xss_world.run_ids[0],
        "id": xss_world.run_ids[0],
        "version": "1",
        "number": "1",
        "start": str(int(xss_world.window)),
    }
    listed = {(p if isinstance(p, str) else p.values[0]).split("?")[0] for p in PAGES}
    checked = 0
    for endpoint in endpoints(app, known):
        template = endpoint.template
        if (
            endpoint.method != "GET"
            or not endpoint.is_ui
            or template.startswith(("/static", "/health"))
            or template in listed
        ):
            continue
        _check(page, xss_server, endpoint.url, watch)
        checked += 1
    print(f"R22 XSS: {checked} more pages enumerated from the app")


def test_the_corpus_is_large_enough() -> None:
    assert len(PAYLOADS) >= 15
    assert len(BIG) > 100_000
    print(f"R22 XSS corpus: {len(PAYLOADS)} payloads; executions: 0 (dialogs fail the test)")
