"""Pipelines as data: the IR, its validation, the plan, and loading pipeline files.

Flow: a file (``.hm/*.py`` rendered in a child process, or IR JSON) becomes a
:class:`Pipeline`; :func:`validate` checks it against the loaded runners;
:func:`build_plan` arranges it into stages and chains for the scheduler. Nothing
here executes a step.
"""

from __future__ import annotations

from hm.pipeline.graph import Chain, Plan, Stage, build_plan, describe_plan
from hm.pipeline.ir import (
    IR_VERSION,
    CachePolicy,
    CommandStep,
    Pipeline,
    Step,
    WaitStep,
    pipeline_from_json,
    pipeline_json_schema,
    pipeline_to_json,
)
from hm.pipeline.origin import Origin
from hm.pipeline.render import load_ir_file, render_file
from hm.pipeline.select import select_steps
from hm.pipeline.sources import (
    PipelineSource,
    find_pipelines,
    find_project_root,
    project_pipelines,
    select_located,
    select_pipeline,
)
from hm.pipeline.validate import PipelineValidationError, ValidationWarning, validate

__all__ = [
    "IR_VERSION",
    "CachePolicy",
    "Chain",
    "CommandStep",
    "Origin",
    "Pipeline",
    "PipelineSource",
    "PipelineValidationError",
    "Plan",
    "Stage",
    "Step",
    "ValidationWarning",
    "WaitStep",
    "build_plan",
    "describe_plan",
    "find_pipelines",
    "find_project_root",
    "load_ir_file",
    "pipeline_from_json",
    "pipeline_json_schema",
    "pipeline_to_json",
    "project_pipelines",
    "render_file",
    "select_located",
    "select_pipeline",
    "select_steps",
    "validate",
]
