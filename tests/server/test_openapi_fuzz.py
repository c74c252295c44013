"""R18: schemathesis over the served OpenAPI document, as `schemathesis run` would do it.

The engine behind `schemathesis run` (``schemathesis.engine.from_schema(...).execute()``)
runs against a real uvicorn serving ``create_app`` with auth on, with a writer token, over
a store holding runs and artifacts. Every phase (examples, coverage, fuzzing, stateful with
inferred links) and every check enabled by default runs, among them
``not_a_server_error``, ``status_code_conformance``, ``content_type_conformance``,
``response_schema_conformance`` and ``negative_data_rejection``. Pass: 0 failures, and
every operation of the document exercised.

Size: ``max-examples`` shrinks as operations are added, so the run stays near
``BUDGET_CASES`` operation × example pairs (about 60–90 s in CI on a 2-core machine).
"""

from __future__ import annotations

import collections
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.engine import Status, from_schema
from schemathesis.engine import events as ev

from loopml.server.app import create_app
from loopml.serving.server import serve_background

# One backend: what is fuzzed is the HTTP layer; the store's SQL runs on both elsewhere.
pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
BUDGET_CASES = 600
# Query parameters that hold a small language (the runs filter and sort): a string the schema
# allows may still not parse, and 400 naming the parse error is the designed answer.
LANGUAGE_PARAMS = {"filter", "sort"}
METHODS = {"get", "put", "post", "delete", "patch"}


def fill_store(client: Any) -> None:
    import monitored_store
    from loopml.monitoring import run_monitor

    for alpha in (0.1, 0.5, 0.9):
        with client.start_run("train") as run:
            run.log_params({"alpha": alpha, "model": "ridge"})
            run.log_metrics({"rmse": 3.0 - alpha, "r2": alpha})
            run.log_artifact({"weights": [alpha, 1.0]}, name="model")
    # A model with logged predictions and an evaluated monitor: the monitor routes answer
    # real windows and alerts, not only 404s.
    t0 = monitored_store.fill(client)
    run_monitor("live", until=t0 + monitored_store.HOURS * 3600, client=client)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def language_overrides(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-operation config: 400 also counts as accepting valid data where a query is a language."""
    found = []
    for method, path, op in operations(document):
        names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        if names & LANGUAGE_PARAMS:
            found.append(
                {
                    "include-path": path,
                    "include-method": method,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "400", "401", "403", "404", "409"]
                        }
                    },
                }
            )
    return found


def test_schemathesis_finds_no_failures(client: Any) -> None:
    fill_store(client)
    _, writer = client.metadata.tokens.create("fuzz-writer", "writer", by="test")
    headers = {"Authorization": f"Bearer {writer}"}
    with serve_background(create_app(client, auth=True)) as server:
        url = server.url + "/api/openapi.json"
        document = httpx.get(url, headers=headers).raise_for_status().json()
        ops = operations(document)
        examples = max(5, min(100, BUDGET_CASES // len(ops)))
        config = schemathesis.Config.from_dict(
            {
                "headers": headers,
                "base-url": server.url,
                "seed": 17,
                "continue-on-failure": True,
                "cache": {"enabled": False},
                "generation": {"max-examples": examples, "database": "none"},
                "operations": language_overrides(document),
            }
        )
        schema = schemathesis.openapi.from_url(url, config=config, headers=headers)
        failures, errors, exercised, phases, cases = run_engine(schema)
    total = len(ops)
    print(
        f"\nR18 operations covered {len(exercised)} / {total}; test cases {cases}; "
        f"max-examples {examples}; scenarios by phase {dict(phases)}; failures {len(failures)}"
    )
    assert not errors, "\n".join(errors)
    assert not failures, "\n\n".join(failures)
    assert exercised == {f"{m} {p}" for m, p, _ in ops}


def run_engine(
    schema: Any,
) -> tuple[list[str], list[str], set[str], collections.Counter[str], int]:
    failures: list[str] = []
    errors: list[str] = []
    exercised: set[str] = set()
    phases: collections.Counter[str] = collections.Counter()
    cases = 0
    for event in from_schema(schema).execute():
        if isinstance(event, ev.ScenarioFinished):
            phases[str(event.phase.value)] += 1
            if event.status != Status.SKIP and event.recorder.cases and event.label:
                exercised.add(event.label)
            cases += len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(
                            f"{event.label} [{event.phase.value}] {check.name}: "
                            f"{getattr(failure, 'title', failure)}: "
                            f"{getattr(failure, 'message', '')[:300]}\n"
                            f"  {check.failure_info.code_sample[:400]}"
                        )
        elif isinstance(event, ev.NonFatalError | ev.FatalError):
            errors.append(str(getattr(event, "info", event))[:500])
        elif isinstance(event, ev.EngineFinished) and event.stop_reason.skip_explanation:
            errors.append(f"schemathesis stopped early: {event.stop_reason}")
    return sorted(set(failures)), errors, exercised, phases, cases
