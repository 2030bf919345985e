"""Pipelines as data: the IR, its validation, the plan, and loading pipeline files.

Flow: a file (``.hm/*.py`` rendered in a child process, or IR JSON) becomes a
:class:`Pipeline`; :func:`validate` checks it against the loaded runners;
:func:`build_plan` arranges it into stages and chains for the scheduler. Nothing
here executes a step.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each name lives. Imported on first use (PEP 562): ``hm --help`` reaches
#: :mod:`hm.pipeline.sources` for the project root and needs none of the rest.
_HOME = {
    "Chain": "graph",
    "Plan": "graph",
    "Stage": "graph",
    "build_plan": "graph",
    "describe_plan": "graph",
    "IR_VERSION": "ir",
    "CachePolicy": "ir",
    "CommandStep": "ir",
    "Pipeline": "ir",
    "Step": "ir",
    "WaitStep": "ir",
    "pipeline_from_json": "ir",
    "pipeline_json_schema": "ir",
    "pipeline_to_json": "ir",
    "Origin": "origin",
    "load_ir_file": "render",
    "render_file": "render",
    "select_steps": "select",
    "PipelineSource": "sources",
    "find_pipelines": "sources",
    "find_project_root": "sources",
    "project_pipelines": "sources",
    "select_located": "sources",
    "select_pipeline": "sources",
    "PipelineValidationError": "validate",
    "ValidationWarning": "validate",
    "validate": "validate",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'hm.pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hm.pipeline.{module}"), name)
    globals()[name] = value
    return value


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
