"""Steps, pipelines, the DAG they build, and cache fingerprints."""

from __future__ import annotations

from loopml.pipelines.pipeline import Pipeline, pipeline
from loopml.pipelines.step import Step, StepSpec, step

__all__ = ["Pipeline", "Step", "StepSpec", "pipeline", "step"]
