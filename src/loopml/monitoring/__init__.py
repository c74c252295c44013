"""Monitors over logged predictions: drift, data quality and live performance by window,
rules that decide, and actions that alert and retrain.

```python
import loopml.monitoring as mon

mon.add_monitor("churn-live", model="churn@production", reference="churn@3", window="1d",
                rules="monitors/churn.toml", retrain="train", notify=["https://hooks…"])
report = mon.run_monitor("churn-live")        # evaluate the closed windows not evaluated yet
mon.windows("churn-live")[-1].stats            # per-feature drift, prediction mix, metrics
```

The CLI (``loopml monitor …``), the REST API (``/api/monitors``), the web UI
(``/monitors``) and the scheduler all call these functions. See docs/monitoring.md.
"""

from loopml.monitoring.engine import MonitorRun, run_monitor
from loopml.monitoring.monitors import (
    MonitorInfo,
    add_monitor,
    alerts,
    get_monitor,
    list_monitors,
    remove_monitor,
    set_paused,
    windows,
)
from loopml.monitoring.rules import DEFAULT_RULES, parse_rules
from loopml.monitoring.stats import WindowStats, window_statistics

__all__ = [
    "DEFAULT_RULES",
    "MonitorInfo",
    "MonitorRun",
    "WindowStats",
    "add_monitor",
    "alerts",
    "get_monitor",
    "list_monitors",
    "parse_rules",
    "remove_monitor",
    "run_monitor",
    "set_paused",
    "window_statistics",
    "windows",
]
