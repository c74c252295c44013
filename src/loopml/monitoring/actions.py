"""What an alert does: a webhook message, a retrain run, and an automatic promotion.

Each action records its outcome on the alert row before the next begins, so a process that
takes over an alert whose owner died does only what is left:

- **notify**: one POST of Slack-compatible JSON (``text`` plus ``blocks``, and a ``loopml``
  object with the alert's fields for other receivers) to each ``--notify`` URL; three
  attempts, then the error is recorded (``loopml monitor show`` lists it).
- **retrain**: a run of the ``--on-alert retrain:PIPELINE`` pipeline in a child process,
  once per episode: when the same rule fired on the window before too, the drift is the
  one a retrain already answers, and no second run starts. The run is tagged ``monitor``,
  ``monitor_rule``, ``monitor_window`` and ``monitor_alert``; the window is passed as the
  pipeline's ``window`` parameter when it has one
  (``"2026-01-02T00:00:00+00:00/2026-01-03T00:00:00+00:00"``). Before starting one, the
  runs tagged with the alert are looked up, so an owner that died after starting the run
  does not get a second.
- **auto-promote** (``--auto-promote``): once the retrain run succeeded, the newest version
  of the monitored model that run registered is promoted to the watched alias through
  ``registry.promote`` — the gates decide, and the audit history names
  ``monitor:NAME`` as who moved it. A failed gate is recorded; nothing moves.

An alert is done (``acted_at``) when every action of its rule has an outcome.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopmlError
from loopml.monitoring.monitors import split_model
from loopml.store.monitors import AlertRecord, MonitorRecord

if TYPE_CHECKING:
    from loopml.tracking.client import Client

log = logging.getLogger(__name__)

WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT_S = 10.0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _rule_actions(record: MonitorRecord, rule: str) -> tuple[str, ...]:
    from loopml.monitoring.rules import rules_of

    try:
        rules = rules_of(record)
    except LoopmlError:
        return ()
    for r in rules:
        if r.name == rule:
            return r.actions
    return ()  # the rule was removed since: record the alert, act no more


def act(c: Client, record: MonitorRecord, alert: AlertRecord, *, owner: str) -> list[str]:
    """Do the actions of ``alert`` not done yet; returns one line per action for people."""
    store = c.metadata.monitors
    wanted = _rule_actions(record, alert.rule)
    done: list[str] = []
    urls = list(record.actions.get("notify") or [])
    if "notify" in wanted and urls and alert.notified_at is None and alert.notify_error is None:
        errors = [e for e in (_post(u, payload(record, alert)) for u in urls) if e]
        if not store.update_alert(
            alert.id,
            owner,
            notified_at=time.time() if not errors else None,
            notify_error="; ".join(errors) or None,
        ):
            return done
        done.append(
            f"alert {alert.id}: webhook "
            + ("sent" if not errors else f"failed: {'; '.join(errors)}")
        )
    pipeline = record.actions.get("retrain")
    episode = _episode_start(c, record, alert) if "retrain" in wanted and pipeline else None
    if episode is not None:
        done.append(
            f"alert {alert.id}: no second retrain: rule {alert.rule} held on the window before "
            f"too, and alert {episode.id} started this episode's retrain"
        )
    elif "retrain" in wanted and pipeline and alert.run_id is None:
        run_id, line = _retrain(c, record, alert, pipeline)
        if run_id is not None and not store.update_alert(alert.id, owner, run_id=run_id):
            return done
        done.append(line)
        alert = store.alert(alert.id)
    if not (record.actions.get("auto_promote") and alert.run_id and alert.promotion is None):
        store.update_alert(alert.id, owner, acted_at=time.time())
    return done


def _episode_start(c: Client, record: MonitorRecord, alert: AlertRecord) -> AlertRecord | None:
    """The alert of the same rule on the window before, if any: the drift goes on, and the
    retrain it triggered is still the answer (one retrain per episode, not per window)."""
    before = c.metadata.monitors.alerts(
        record.name, window_start=alert.window_start - record.every_s, limit=50
    )
    return next((a for a in before if a.rule == alert.rule), None)


def payload(record: MonitorRecord, alert: AlertRecord) -> dict[str, Any]:
    """The Slack-compatible message of an alert."""
    head = f":rotating_light: loopml monitor *{record.name}*: rule *{alert.rule}* fired"
    return {
        "text": f"{head}\n{alert.message}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": head}},
            {"type": "section", "text": {"type": "mrkdwn", "text": alert.message}},
        ],
        "loopml": {
            "monitor": record.name,
            "model": record.model,
            "rule": alert.rule,
            "alert": alert.id,
            "window_start": _iso(alert.window_start),
            "window_end": _iso(alert.window_end),
            "value": alert.value if alert.value is None else float(alert.value),
            "message": alert.message,
        },
    }


def _post(url: str, body: dict[str, Any]) -> str | None:
    """POST ``body`` as JSON; None when the receiver answered 2xx, else the last error."""
    data = json.dumps(body, allow_nan=False, default=str).encode("utf-8")
    error = ""
    for attempt in range(WEBHOOK_ATTEMPTS):
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "loopml-monitor"},
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as answer:  # noqa: S310 - http(s) only, checked when the monitor was added
                if 200 <= answer.status < 300:
                    return None
                error = f"{url}: HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            error = f"{url}: HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code != 429:
                break  # the receiver refuses this message: trying again will not help
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = f"{url}: {getattr(exc, 'reason', exc)}"
        time.sleep(min(2.0**attempt, 5.0))
    log.warning("monitor webhook failed: %s", error)
    return error


def _retrain(
    c: Client, record: MonitorRecord, alert: AlertRecord, pipeline: str
) -> tuple[str | None, str]:
    from loopml.pipelines.discovery import find_pipeline
    from loopml.scheduler.launch import JobSpec, launch

    found = c.search_runs(f"tags.monitor_alert = '{record.name}:{alert.id}'", limit=1)
    if found:
        return found[0].id, f"alert {alert.id}: retrain run {found[0].label} (started before)"
    window = f"{_iso(alert.window_start)}/{_iso(alert.window_end)}"
    try:
        target = find_pipeline(c.settings, pipeline)
    except LoopmlError as exc:
        return None, f"alert {alert.id}: retrain not started: {exc}"
    params = [f"window={window}"] if "window" in target.signature.parameters else []
    spec = JobSpec(
        pipeline=pipeline,
        params=params,
        tags={
            "monitor": record.name,
            "monitor_rule": alert.rule,
            "monitor_window": window,
            "monitor_alert": f"{record.name}:{alert.id}",
            "triggered_by": f"monitor:{record.name}",
        },
        die_with_parent=False,  # the retrain outlives a `loopml monitor run` that started it
    )
    launched = launch(c.settings, spec)
    import threading

    def reap() -> None:  # no zombie once the run ends, whoever asks about it afterwards
        from loopml._signals import leave_signals_to_main_thread

        leave_signals_to_main_thread()
        launched.wait()

    threading.Thread(target=reap, name="loopml-retrain-reaper", daemon=True).start()
    run_id = launched.wait_started(120.0)
    if run_id is None:
        return None, f"alert {alert.id}: retrain {pipeline} did not start: {launched.error}"
    return run_id, f"alert {alert.id}: retrain run {run_id} of {pipeline} started"


def follow_up(c: Client, record: MonitorRecord, *, owner: str, wait: bool) -> list[str]:
    """Promote the versions of finished retrain runs (``--auto-promote``); with ``wait``,
    wait for the runs still going first."""
    from loopml.store.status import RunStatus

    if not record.actions.get("auto_promote"):
        return []
    store = c.metadata.monitors
    lines = []
    for alert in store.alerts(record.name, limit=1000):
        if alert.run_id is None or alert.promotion is not None or alert.acted_at is not None:
            continue
        if alert.owner != owner:
            continue  # another process holds it; it or its successor follows it up
        run = c.run_record(alert.run_id)
        while wait and run.status == RunStatus.RUNNING:
            store.update_alert(alert.id, owner, lease_until=time.time() + 300)
            time.sleep(0.5)
            run = c.run_record(alert.run_id)
        if run.status == RunStatus.RUNNING:
            continue
        outcome = _promote(c, record, alert, run)
        store.update_alert(alert.id, owner, promotion=outcome, acted_at=time.time())
        lines.append(f"alert {alert.id}: {outcome['summary']}")
    return lines


def _promote(c: Client, record: MonitorRecord, alert: AlertRecord, run: Any) -> dict[str, Any]:
    from loopml.registry.promotion import PromotionRefusedError, promote
    from loopml.store.status import RunStatus

    model, alias = split_model(record.model)
    if run.status != RunStatus.SUCCEEDED:
        return {"promoted": False, "summary": f"retrain run {run.id} {run.status}: not promoted"}
    versions = [v for v in c.run_models(run.id) if v.name == model]
    if not versions or alias is None:
        return {
            "promoted": False,
            "summary": f"retrain run {run.id} registered no version of {model}: not promoted",
        }
    version = max(versions, key=lambda v: v.number)
    reason = (
        f"auto-promote: monitor {record.name} rule {alert.rule} on window "
        f"{_iso(alert.window_start)}; retrained by run {run.id}"
    )
    try:
        result = promote(
            model, version.number, to=alias, reason=reason, by=f"monitor:{record.name}", client=c
        )
    except PromotionRefusedError as exc:
        return {
            "promoted": False,
            "version": version.number,
            "gates": [g.to_dict() for g in exc.promotion.gates],
            "summary": f"{version.label} not promoted to {alias}: {exc}",
        }
    except LoopmlError as exc:
        return {"promoted": False, "version": version.number, "summary": f"not promoted: {exc}"}
    return {
        "promoted": True,
        "version": version.number,
        "gates": [g.to_dict() for g in result.gates],
        "summary": f"{version.label} promoted to {alias} (gates passed)",
    }
