"""``hm run``: pick a pipeline, validate it against the plugins, run it or show its plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hm.cli import output
from hm.cli.options import RunFormatOption
from hm.cli.session import SESSION
from hm.errors import ExitCode

if TYPE_CHECKING:
    from hm.pipeline.routing import RunnerInfo
    from hm.runtime import Registry


def run(
    slug: str | None = typer.Argument(None, help="The pipeline to run, when the project has several."),
    file: Path | None = typer.Option(
        None, "--file", "-f", help="Run the pipeline in this .py (DSL) or .json (IR) file.", dir_okay=False
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (stages, chains, runners); run nothing."),
    format: RunFormatOption = "human",
    parallelism: int | None = typer.Option(
        None, "--parallelism", "-j", min=1, help="Steps running at once. Default: the number of CPUs."
    ),
    keep_going: bool = typer.Option(
        False, "--keep-going", "-k", help="Let independent chains finish after a failure (default: stop at the first)."
    ),
    isolate: bool = typer.Option(
        False,
        "--isolate",
        help="Run every plugin in a worker process of its own: a crash or hang fails its step, not hm.",
    ),
) -> None:
    """Run a pipeline of the project (or --file), each step on the runner plugin it names."""
    from hm.pipeline import build_plan, describe_plan, select_located, validate
    from hm.pipeline.routing import route, step_image
    from hm.run.engine import RunOptions, run_pipeline

    root = SESSION.project_root
    pipeline, origin = select_located(root, slug, file)
    registry = SESSION.registry
    if isolate:
        registry.policy = registry.policy.isolating_everything("--isolate")
    for rec in registry.broken():
        output.print_warning(rec.error)  # type: ignore[arg-type]
    warnings = validate(
        pipeline,
        # Conflicted runners count as known: running them raises the conflict (exit 4).
        runners=registry.runner_names(),
        default_runner=registry.default_runner,
        source=origin,
        runner_info=runner_info(registry),
    )
    for warning in warnings:
        output.print_warning(warning)
    if dry_run:
        plan = build_plan(pipeline)
        text = describe_plan(
            plan,
            lambda step: route(step, pipeline, registry.default_runner) or "?",
            lambda step: step_image(step, pipeline),
        )
        output.stdout.print(text, markup=False, highlight=False)
        return
    if format == "json":
        from hm.run.output_json import JsonLinesSink

        sink = JsonLinesSink()
    else:
        from hm.run.output_human import HumanSink

        sink = HumanSink()
    options = RunOptions(
        project_root=root,
        parallelism=parallelism or os.cpu_count() or 1,
        keep_going=keep_going,
        keep_workspaces=os.environ.get("HM_KEEP_WORKSPACES") == "1",
        json_events=format == "json",
    )
    result = run_pipeline(pipeline, registry, options, sink)
    if format != "json":
        sink.summary(  # type: ignore[attr-defined]
            [(o.key, o.status, o.duration_ms, o.message, o.tail) for o in result.outcomes], result.finished
        )
    if result.exit_code != ExitCode.OK:
        raise typer.Exit(int(result.exit_code))


def runner_info(registry: Registry) -> dict[str, RunnerInfo]:
    """What validation needs to know about each runner: from the manifests of the
    loaded plugins, and from the bundled plugins the build had to leave out."""
    from hm.pipeline.routing import RunnerInfo
    from hm.runtime import unavailable_bundled
    from hm_plugin_sdk.protocol import StepExecutorCapability

    info: dict[str, RunnerInfo] = {}
    for name, rec in registry.runners().items():
        for cap in rec.caps(StepExecutorCapability):
            if name in cap.runners:
                args = tuple(cap.runner_args) if cap.runner_args is not None else None
                info[name] = RunnerInfo(images=cap.images, runner_args=args, plugin=rec.name)
    for missing in unavailable_bundled():
        for name in missing.runners:
            info.setdefault(name, RunnerInfo(unavailable=missing.what, hint=missing.hint))
    return info
