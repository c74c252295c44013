"""Pipelines on a schedule: cron fires claimed exactly once through the store, each run in
its own process (see ``docs/scheduling.md``)."""
