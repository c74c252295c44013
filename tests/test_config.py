"""Configuration that can grow (issue 12 §2): a typed, nested ``loopml.toml`` schema.

``loopml.toml`` will soon hold nested and repeated tables (``[schedules.nightly]``,
``[models.churn.gates.production]``, ``[server]``). The schema is a tree of dataclasses
checked by one small validator, ``loopml.config.convert``: these tests give it a
throwaway schema shaped like those future tables, and check that every mistake is
reported with its TOML path, the value and what was expected (with a did-you-mean for
unknown keys), that ``[store] options`` reaches the artifact store, and that reading the
settings stays cheap (no validation library is imported).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from loopml import Client
from loopml.config import ConfigFile, ProjectSection, convert, load_settings
from loopml.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str
    pipeline: str = "train"
    params: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Gate:
    metric: str
    minimum: float = field(
        default=0.0, metadata={"rule": "in [0, 1]", "test": lambda v: 0 <= v <= 1}
    )


@dataclass(frozen=True, slots=True)
class Model:
    gates: dict[str, Gate] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Server:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int | None = None


@dataclass(frozen=True, slots=True)
class Future:
    """What loopml.toml may hold after the capability issues."""

    schedules: dict[str, Schedule] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    server: Server = field(default_factory=Server)


GOOD = """
[schedules.nightly]
cron = "0 3 * * *"
params = { alpha = 0.5, layers = [1, 2] }

[schedules.hourly]
cron = "0 * * * *"
pipeline = "refresh"
enabled = false

[models.churn]
tags = ["tabular", "prod"]

[models.churn.gates.production]
metric = "auc"
minimum = 0.9

[models.churn.gates.staging]
metric = "auc"

[models.fraud]
tags = "solo"

[server]
port = 9000
"""


def _parse(text: str) -> Future:
    result = convert(Future, tomllib.loads(text), ())
    assert isinstance(result, Future)
    return result


def test_nested_and_repeated_tables_parse_into_typed_values() -> None:
    config = _parse(GOOD)
    assert config.schedules == {
        "nightly": Schedule(cron="0 3 * * *", params={"alpha": 0.5, "layers": [1, 2]}),
        "hourly": Schedule(cron="0 * * * *", pipeline="refresh", enabled=False),
    }
    churn = config.models["churn"]
    assert churn.tags == ("tabular", "prod")
    assert churn.gates == {
        "production": Gate(metric="auc", minimum=0.9),
        "staging": Gate(metric="auc", minimum=0.0),
    }
    assert isinstance(churn.gates["staging"].minimum, float)
    assert config.models["fraud"].tags == ("solo",)  # one string is a list of one
    assert config.server == Server(port=9000)


def test_an_empty_file_gives_the_defaults() -> None:
    assert _parse("") == Future()


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        pytest.param(
            "[schedules.nightly]\ncron = 5\n",
            ["[schedules.nightly] cron", "got 5", "expected a string"],
            id="wrong-type",
        ),
        pytest.param(
            '[schedules.nightly]\ncrn = "0 3 * * *"\n',
            [
                "Unknown key 'crn' in [schedules.nightly]",
                "['cron', 'enabled', 'params', 'pipeline']",
                "Did you mean 'cron'?",
            ],
            id="unknown-key",
        ),
        pytest.param(
            '[schedules.nightly]\npipeline = "train"\n',
            ["[schedules.nightly]", "'cron'", "missing"],
            id="missing-key",
        ),
        pytest.param(
            "[models.churn.gates.production]\nmetric = 1\n",
            ["[models.churn.gates.production] metric", "got 1", "expected a string"],
            id="deep-wrong-type",
        ),
        pytest.param(
            '[models.churn.gates.production]\nmetric = "auc"\nminimum = 2\n',
            ["[models.churn.gates.production] minimum", "got 2", "a number in [0, 1]"],
            id="rule",
        ),
        pytest.param(
            '[models.churn.gates.production]\nmetirc = "auc"\n',
            ["Unknown key 'metirc' in [models.churn.gates.production]", "Did you mean 'metric'?"],
            id="deep-unknown-key",
        ),
        pytest.param(
            '[models.churn]\ntags = ["a", 2]\n',
            ["[models.churn] tags[1]", "got 2", "expected a string"],
            id="list-item",
        ),
        pytest.param(
            "schedules = 3\n", ["[schedules]", "got 3", "expected a table"], id="scalar-for-table"
        ),
        pytest.param(
            '[schedules]\nnightly = "0 3 * * *"\n',
            ["[schedules] nightly", "got '0 3 * * *'", "expected a table"],
            id="scalar-for-entry",
        ),
        pytest.param(
            "[server]\nport = true\n",
            ["[server] port", "got True", "expected an integer"],
            id="bool-is-not-int",
        ),
        pytest.param(
            '[server]\nworkers = "four"\n',
            ["[server] workers", "got 'four'", "expected an integer"],
            id="optional",
        ),
        pytest.param(
            "[servr]\nport = 1\n",
            ["Unknown section [servr]", "Did you mean 'server'?"],
            id="unknown-section",
        ),
    ],
)
def test_a_mistake_is_reported_with_its_path_value_and_expectation(
    text: str, needles: list[str]
) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        _parse(text)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[run]\nworkrs = 2\n", ["Unknown key 'workrs' in [run]", "Did you mean 'workers'?"]),
        ("[run]\nworkers = 0\n", ["[run] workers", "got 0", "an integer >= 1"]),
        ("[run]\nheartbeat_seconds = -1\n", ["[run] heartbeat_seconds", "got -1", "> 0 seconds"]),
        ("[cost]\ncpu_hour = -0.5\n", ["[cost] cpu_hour", "got -0.5", ">= 0"]),
        ("[store.options]\n", []),  # an empty options table is fine
        ('[store]\noptions = "x"\n', ["[store] options", "got 'x'", "expected a table"]),
        ('[project]\npipelines = ["a", 1]\n', ["[project] pipelines[1]", "got 1"]),
        ("[sotre]\n", ["Unknown section [sotre]", "Did you mean 'store'?"]),
        ("[remote]\n", ["[remote]: missing required key 'url' (a string)"]),
        ('[remote]\nurll = "s3://b"\n', ["Unknown key 'urll' in [remote]", "Did you mean 'url'?"]),
        ("[remote]\nurl = 3\n", ["[remote] url", "got 3", "expected a string"]),
        ('[remote]\nurl = "s3://b"\noptions = 1\n', ["[remote] options", "expected a table"]),
        (
            '[remote]\nurl = "s3://b"\njobs = 0\n',
            ["[remote] jobs", "got 0", "expected an integer between 1 and 64"],
        ),
        ("[remot]\n", ["Unknown section [remot]", "Did you mean 'remote'?"]),
    ],
)
def test_loopml_toml_errors_name_the_file_and_the_path(
    project: Path, text: str, needles: list[str]
) -> None:
    path = project / "loopml.toml"
    path.write_text(text)
    if not needles:
        assert load_settings().storage_options == {}
        return
    with pytest.raises(InvalidParameterError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for needle in needles:
        assert needle in message, message


def test_the_real_schema_defaults_match_a_fresh_project(project: Path) -> None:
    settings = load_settings()
    assert settings.config == ConfigFile(project=ProjectSection(name="t"))
    assert (settings.executor, settings.storage_options) == ("local", {})


def test_remote_settings(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``[remote]``: a URL as given, a folder made absolute; ``LOOPML_REMOTE_URL`` wins."""
    assert (load_settings().remote_url, load_settings().remote_options) == (None, {})
    (project / "loopml.toml").write_text(
        '[remote]\nurl = "s3://team/ml"\n[remote.options]\nendpoint_url = "http://h:9000"\n'
        '[remote.options.client_kwargs]\nregion_name = "eu-west-1"\n'
    )
    settings = load_settings()
    assert settings.remote_url == "s3://team/ml"
    assert settings.remote_options == {
        "endpoint_url": "http://h:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    assert settings.remote_jobs == 8
    (project / "loopml.toml").write_text('[remote]\nurl = "../backup"\njobs = 3\n')
    assert load_settings().remote_url == str(project / "../backup")
    assert load_settings().remote_jobs == 3
    monkeypatch.setenv("LOOPML_REMOTE_URL", str(tmp_path / "elsewhere"))
    assert load_settings().remote_url == str(tmp_path / "elsewhere")


def test_store_options_reach_the_artifact_store(project: Path, s3_bucket: Any) -> None:
    """``[store] options`` (nested tables included) are handed to the remote blob backend."""
    options = s3_bucket.storage_options
    (project / "loopml.toml").write_text(
        f'[project]\nname = "t"\n\n[store]\nartifacts = "{s3_bucket.uri}"\n\n'
        f"[store.options]\nendpoint_url = {json.dumps(options['endpoint_url'])}\n"
        f"key = {json.dumps(options['key'])}\nsecret = {json.dumps(options['secret'])}\n\n"
        "[store.options.client_kwargs]\n"
        f"region_name = {json.dumps(options['client_kwargs']['region_name'])}\n"
    )
    settings = load_settings()
    assert settings.storage_options == options
    client = Client(settings)
    record = client.store_value({"weights": [1, 2, 3]})
    assert client.load_artifact(record.digest) == {"weights": [1, 2, 3]}
    assert client.artifacts.exists(record.digest)
    import fsspec

    fs = fsspec.filesystem("s3", **options)
    stored = [p for p in fs.find(s3_bucket.name) if p.endswith(record.digest[2:])]
    assert len(stored) == 1, fs.find(s3_bucket.name)
    client.close()


def test_reading_settings_imports_nothing_but_the_standard_library(project: Path) -> None:
    (project / "loopml.toml").write_text(
        '[project]\nname = "t"\n\n[run]\nworkers = 4\n\n[store.options]\nanon = true\n'
    )
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from loopml.config import load_settings\n"
        "s = load_settings()\n"
        "assert s.workers == 4 and s.storage_options == {'anon': True}, s\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'loopml'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=project, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout  # no pydantic, msgspec, attrs …
