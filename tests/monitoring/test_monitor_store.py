"""Monitors, windows and alerts in the store, on SQLite and PostgreSQL: an alert fires once
per (monitor, rule, window) even with many processes racing, leases decide who acts on it,
removing a monitor removes its windows and alerts; and the prediction log pages and counts
the windows a monitor reads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from loopml.errors import ConflictError, NotFoundError
from loopml.store import (
    AlertRecord,
    MetadataStore,
    MonitorRecord,
    PredictionRow,
    WindowRecord,
)

HOUR = 3600.0


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    s = MetadataStore(store_url).open()
    yield s
    s.close()


def _monitor(name: str = "churn-watch", **kw: object) -> MonitorRecord:
    fields: dict[str, object] = {
        "model": "churn@production",
        "reference": "training",
        "window_s": HOUR,
        "every_s": HOUR,
        "origin": 0.0,
        "rules": '[rules]\ntraffic = "rows < 1"\n',
        "actions": {"notify": ["http://127.0.0.1:9/hook"], "retrain": None},
        "created_at": 10.0,
        "updated_at": 10.0,
        "updated_by": "ann",
    }
    fields.update(kw)
    return MonitorRecord(name=name, **fields)  # type: ignore[arg-type]


def _fire(store: MetadataStore, start: float, *, rule: str = "traffic", **kw: object) -> object:
    args: dict[str, object] = {
        "value": 0.0,
        "message": "rows < 1",
        "owner": "me",
        "now": 100.0,
        "lease_s": 60.0,
    }
    args.update(kw)
    return store.monitors.fire(
        "churn-watch",
        rule,
        (start, start + HOUR),
        **args,  # type: ignore[arg-type]
    )


def _window(start: float, rows: int = 10, labels: int = 2, **stats: object) -> WindowRecord:
    return WindowRecord("churn-watch", start, start + HOUR, rows, labels, dict(stats), 5.0)


# -- definitions ----------------------------------------------------------------------------


def test_a_monitor_reads_back_as_written_and_a_second_add_needs_replace(
    store: MetadataStore,
) -> None:
    monitors = store.monitors
    record = _monitor()
    monitors.add(record)
    assert monitors.get("churn-watch") == record
    with pytest.raises(ConflictError, match="--replace"):
        monitors.add(replace(record, model="churn@staging"))
    monitors.add(replace(record, model="churn@staging", created_at=99.0), replace=True)
    got = monitors.get("churn-watch")
    assert got.model == "churn@staging"
    assert got.created_at == 10.0  # replacing keeps when it was first made
    monitors.add(_monitor("a-first"))
    assert [m.name for m in monitors.list()] == ["a-first", "churn-watch"]


def test_an_unknown_monitor_is_not_found_with_a_suggestion(store: MetadataStore) -> None:
    store.monitors.add(_monitor())
    with pytest.raises(NotFoundError, match="Did you mean 'churn-watch'"):
        store.monitors.get("churn-wach")


def test_pausing_is_stored_with_who_and_when(store: MetadataStore) -> None:
    store.monitors.add(_monitor())
    store.monitors.set_paused("churn-watch", True, at=50.0, by="bob")
    got = store.monitors.get("churn-watch")
    assert (got.paused, got.updated_at, got.updated_by) == (True, 50.0, "bob")
    store.monitors.set_paused("churn-watch", False, at=60.0, by="ann")
    assert store.monitors.get("churn-watch").paused is False
    with pytest.raises(NotFoundError):
        store.monitors.set_paused("nope", True, at=1.0, by="x")


# -- windows --------------------------------------------------------------------------------


def test_windows_are_replaced_when_evaluated_again_and_filtered_by_start(
    store: MetadataStore,
) -> None:
    monitors = store.monitors
    monitors.add(_monitor())
    for k in range(4):
        monitors.save_window(_window(k * HOUR, rows=10 + k, drift={"k": k}))
    monitors.save_window(_window(HOUR, rows=50, labels=7, late=True))  # late labels arrived
    windows = monitors.windows("churn-watch")
    assert [w.start for w in windows] == [0.0, HOUR, 2 * HOUR, 3 * HOUR]
    assert (windows[1].rows, windows[1].labels, windows[1].stats) == (50, 7, {"late": True})
    assert windows[2].stats == {"drift": {"k": 2}}
    assert [w.start for w in monitors.windows("churn-watch", since=HOUR, until=3 * HOUR)] == [
        HOUR,
        2 * HOUR,
    ]
    newest = monitors.windows("churn-watch", limit=2, newest_first=True)
    assert [w.start for w in newest] == [3 * HOUR, 2 * HOUR]
    assert monitors.window_counts("churn-watch") == {
        0.0: (10, 2),
        HOUR: (50, 7),
        2 * HOUR: (12, 2),
        3 * HOUR: (13, 2),
    }
    assert monitors.window_counts("other") == {}


# -- alerts ---------------------------------------------------------------------------------


def test_a_rule_fires_once_per_window(store: MetadataStore) -> None:
    store.monitors.add(_monitor())
    first = _fire(store, 0.0, value=3.5)
    assert isinstance(first, AlertRecord)
    assert (first.monitor, first.rule, first.window_start, first.window_end) == (
        "churn-watch",
        "traffic",
        0.0,
        HOUR,
    )
    assert (first.value, first.owner, first.lease_until, first.acted_at) == (3.5, "me", 160.0, None)
    assert _fire(store, 0.0, owner="other") is None  # the same rule on the same window
    assert isinstance(_fire(store, 0.0, rule="drift"), AlertRecord)  # another rule
    assert isinstance(_fire(store, HOUR), AlertRecord)  # another window
    assert len(store.monitors.alerts("churn-watch")) == 3
    assert store.monitors.alert(first.id) == first


def test_firing_for_an_unknown_monitor_is_not_found_rather_than_already_fired(
    store: MetadataStore,
) -> None:
    with pytest.raises(NotFoundError, match="'churn-watch'"):
        _fire(store, 0.0)


def test_eight_processes_racing_on_one_alert_record_it_once(store_url: str) -> None:
    setup = MetadataStore(store_url).open()
    setup.monitors.add(_monitor())
    racers = [MetadataStore(store_url).open() for _ in range(8)]  # a connection pool each
    start = threading.Barrier(len(racers))

    def race(i: int) -> object:
        start.wait()
        return _fire(racers[i], 0.0, owner=f"scheduler-{i}")

    try:
        with ThreadPoolExecutor(len(racers)) as pool:
            results = list(pool.map(race, range(len(racers))))
        won = [r for r in results if r is not None]
        assert len(won) == 1
        (alert,) = setup.monitors.alerts("churn-watch")
        assert isinstance(won[0], AlertRecord) and won[0].id == alert.id
        assert alert.owner == won[0].owner  # the winner owns its actions
    finally:
        for s in (*racers, setup):
            s.close()


def test_alerts_page_newest_window_first_and_count_per_monitor(store: MetadataStore) -> None:
    store.monitors.add(_monitor())
    store.monitors.add(_monitor("other"))
    for k in range(5):
        _fire(store, k * HOUR)
    store.monitors.fire(
        "other", "traffic", (0.0, HOUR), value=None, message="", owner="me", now=1.0, lease_s=1.0
    )
    starts = [a.window_start for a in store.monitors.alerts("churn-watch", limit=2, offset=1)]
    assert starts == [3 * HOUR, 2 * HOUR]
    assert [a.monitor for a in store.monitors.alerts(window_start=0.0)] == ["other", "churn-watch"]
    assert len(store.monitors.alerts()) == 6
    assert store.monitors.open_alert_counts() == {"churn-watch": 5, "other": 1}


def test_take_over_only_takes_unfinished_alerts_whose_lease_ran_out(store: MetadataStore) -> None:
    monitors = store.monitors
    monitors.add(_monitor())
    expired = _fire(store, 0.0, now=100.0, lease_s=10.0)  # lease until 110
    leased = _fire(store, HOUR, now=100.0, lease_s=100.0)  # lease until 200
    done = _fire(store, 2 * HOUR, now=100.0, lease_s=10.0)
    assert isinstance(expired, AlertRecord) and isinstance(leased, AlertRecord)
    assert isinstance(done, AlertRecord)
    assert monitors.update_alert(done.id, "me", acted_at=105.0)

    assert monitors.take_over("rescuer", now=105.0, lease_s=30.0) == []  # nothing ran out yet
    taken = monitors.take_over("rescuer", now=150.0, lease_s=30.0)
    assert [(a.id, a.owner, a.lease_until) for a in taken] == [(expired.id, "rescuer", 180.0)]
    assert monitors.take_over("third", now=150.0, lease_s=30.0) == []  # rescuer holds it now
    assert monitors.alert(leased.id).owner == "me"
    assert monitors.alert(done.id).owner == "me"


def test_update_alert_is_refused_to_a_process_that_no_longer_owns_it(store: MetadataStore) -> None:
    monitors = store.monitors
    monitors.add(_monitor())
    alert = _fire(store, 0.0, now=100.0, lease_s=10.0)
    assert isinstance(alert, AlertRecord)
    monitors.take_over("rescuer", now=200.0, lease_s=30.0)
    assert monitors.update_alert(alert.id, "me", notified_at=201.0) is False
    assert monitors.alert(alert.id).notified_at is None
    promotion = {"summary": "promoted v3", "version": 3}
    assert monitors.update_alert(
        alert.id, "rescuer", notified_at=201.0, run_id="r1", promotion=promotion, acted_at=202.0
    )
    got = monitors.alert(alert.id)
    assert (got.notified_at, got.run_id, got.promotion, got.acted_at) == (
        201.0,
        "r1",
        promotion,
        202.0,
    )
    with pytest.raises(ValueError, match="expected some of"):
        monitors.update_alert(alert.id, "rescuer", message="hacked")
    with pytest.raises(ValueError, match="expected some of"):
        monitors.update_alert(alert.id, "rescuer")
    with pytest.raises(NotFoundError):
        monitors.alert(alert.id + 100)


def test_removing_a_monitor_removes_its_windows_and_alerts_only(store: MetadataStore) -> None:
    monitors = store.monitors
    monitors.add(_monitor())
    monitors.add(_monitor("other"))
    monitors.save_window(_window(0.0))
    monitors.save_window(replace(_window(0.0), monitor="other"))
    _fire(store, 0.0)
    monitors.fire(
        "other", "traffic", (0.0, HOUR), value=None, message="", owner="me", now=1.0, lease_s=1.0
    )
    monitors.remove("churn-watch")
    with pytest.raises(NotFoundError):
        monitors.get("churn-watch")
    assert monitors.windows("churn-watch") == [] and monitors.alerts("churn-watch") == []
    assert len(monitors.windows("other")) == 1 and len(monitors.alerts("other")) == 1
    with pytest.raises(NotFoundError):
        monitors.remove("churn-watch")
    monitors.add(_monitor())  # the name is free again, with no history
    assert monitors.windows("churn-watch") == [] and _fire(store, 0.0) is not None


# -- the prediction log a monitor reads -----------------------------------------------------


def _prediction(pid: str, at: float, **kw: object) -> PredictionRow:
    output = json.dumps({"prediction": 1})
    return PredictionRow(pid, "churn", 1, "churn@production", at, "{}", output, **kw)  # type: ignore[arg-type]


def test_predictions_page_with_offset_in_time_order(store: MetadataStore) -> None:
    log = store.predictions
    log.add([_prediction(f"p-{i:02d}", 1000.0 - i) for i in range(10)])  # written newest first
    everything = [r.id for r in log.query("churn")]
    assert everything == [f"p-{i:02d}" for i in reversed(range(10))]
    pages = [[r.id for r in log.query("churn", limit=4, offset=o)] for o in (0, 4, 8)]
    assert sum(pages, []) == everything and [len(p) for p in pages] == [4, 4, 2]
    assert [r.id for r in log.query("churn", offset=7)] == everything[7:]
    assert log.query("churn", offset=10) == []
    assert [r.id for r in log.query("churn", since=995.0, until=998.0, offset=1)] == [
        "p-04",
        "p-03",
    ]


def test_window_counts_are_answered_predictions_and_their_labels_in_the_window(
    store: MetadataStore,
) -> None:
    log = store.predictions
    log.add([_prediction(f"p-{i}", float(i)) for i in range(6)])
    log.add([_prediction("p-2.s", 2.0, shadow_of="p-2")])  # a shadow model's row: not answered
    log.add_feedback([("p-1", "1", 50.0), ("p-2", "0", 50.0), ("p-5", "1", 50.0)])
    assert log.window_counts("churn", 1.0, 5.0) == (4, 2)  # [1, 5): p-1 … p-4, labels p-1, p-2
    assert log.window_counts("churn", 0.0, 6.0) == (6, 3)
    assert log.window_counts("churn", 6.0, 10.0) == (0, 0)
    assert log.window_counts("other", 0.0, 6.0) == (0, 0)
