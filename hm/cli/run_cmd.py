"""``hm run``: pick a pipeline, validate it against the plugins, run it or show its plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hm.cli import output
from hm.cli.options import RunFormatOption
from hm.cli.output import safe
from hm.cli.session import SESSION
from hm.errors import ExitCode

if TYPE_CHECKING:
    from hm.pipeline.routing import RunnerInfo
    from hm.run.engine import RunResult, Sink
    from hm.run.output_human import HumanSink
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
    steps: list[str] | None = typer.Option(
        None, "--step", "-s", help="Run only this step (repeatable), and the steps it builds on."
    ),
    rerun_failed: bool = typer.Option(
        False,
        "--rerun-failed",
        help="Run the steps that failed in the last run of this pipeline, and what they build on.",
    ),
    list_only: bool = typer.Option(
        False, "--list", help="List the project's pipelines (as `hm pipelines`); run nothing."
    ),
    artifacts_dir: Path | None = typer.Option(
        None, "--artifacts-dir", help="Copy the run's artifacts into this folder, as STEP/PATH.", file_okay=False
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        help="On a failure, open a terminal session in the first failed step's workspace (stdin must be a terminal).",
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        envvar="HM_CLUSTER",
        help="Run the steps on a Dask cluster: tcp://HOST:PORT, or local:N worker processes here "
        "(needs `pip install 'hm[cluster]'`).",
    ),
) -> None:
    """Run a pipeline of the project (or --file), each step on the runner plugin it names."""
    from hm.pipeline import build_plan, describe_plan, select_located, validate
    from hm.pipeline.routing import route, step_image
    from hm.run.engine import RunOptions, run_pipeline

    if list_only:
        from hm.cli.pipelines_cmd import pipelines

        pipelines(format)
        return
    root = SESSION.project_root
    pipeline, origin = select_located(root, slug, file)
    if rerun_failed:
        failed = _last_failed(root, pipeline.slug)
        if not failed:
            output.stderr.print(f"the last run of pipeline '{safe(pipeline.slug)}' had no failed step; nothing to run")
            return
        steps = [*(steps or []), *failed]
    if steps:
        from hm.pipeline import select_steps

        pipeline = select_steps(pipeline, steps, where="hm run --rerun-failed" if rerun_failed else "hm run --step")
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
    cluster_spec = None
    if cluster:
        from hm.cluster import parse_cluster

        cluster_spec = parse_cluster(cluster)
    human: HumanSink | None = None
    sink: Sink
    if format == "json":
        from hm.run.output_json import JsonLinesSink

        sink = JsonLinesSink()
    else:
        from hm.run.output_human import HumanSink

        sink = human = HumanSink()
    options = RunOptions(
        project_root=root,
        parallelism=parallelism or os.cpu_count() or 1,
        keep_going=keep_going,
        keep_workspaces=os.environ.get("HM_KEEP_WORKSPACES") == "1",
        json_events=format == "json",
        cluster=cluster_spec,
    )
    result = run_pipeline(pipeline, registry, options, sink)
    if human is not None:
        human.summary([(o.key, o.status, o.duration_ms, o.message, o.tail) for o in result.outcomes], result.finished)
        if result.record_dir is not None:
            output.stderr.print(f"full logs: `hm logs {result.run_id}` ({safe(result.record_dir)})")
    if result.kept_workspaces is not None:
        output.stderr.print(f"workspaces kept in {safe(result.kept_workspaces)} (HM_KEEP_WORKSPACES=1)")
    if artifacts_dir is not None and result.record_dir is not None:
        from hm.run.artifacts import copy_out

        copied = copy_out(result.record_dir, artifacts_dir)
        if format != "json":
            output.stderr.print(
                f"copied {len(copied)} artifact{'' if len(copied) == 1 else 's'} to {safe(artifacts_dir)}"
            )
    if debug and result.exit_code != ExitCode.OK:
        if format == "json":  # stdout is the event stream: a terminal session would corrupt it
            output.stderr.print("--debug: not with --format json (stdout is the event stream); no session opened")
        else:
            _debug_session(root, result)
    if result.exit_code != ExitCode.OK:
        raise typer.Exit(int(result.exit_code))


def _debug_session(root: Path, result: RunResult) -> None:
    """``--debug``: a session into the first failed step that kept its workspace.

    Skipped, with a note, when stdin is not a terminal (a CI log cannot type) or
    no failed step was kept; hm's exit code stays the run's either way.
    """
    import sys

    first = next((key for o in result.outcomes for key in result.kept_failed if key == o.key), None)
    if first is None:
        output.stderr.print("--debug: no failed step kept its workspace; no session opened")
        return
    if not sys.stdin.isatty():
        output.stderr.print(
            "--debug: stdin is not a terminal, so no session was opened; "
            f"later: `hm shell {first} --run {result.run_id}`"
        )
        return
    from hm.cli.shell_cmd import open_session
    from hm.run.records import RunStore

    output.stderr.print(f"--debug: opening a session in step '{safe(first)}' (exit it to finish)")
    code = open_session(RunStore(root).find(result.run_id), first, [])
    output.stderr.print(f"--debug: the session ended with exit code {code}")


def _last_failed(root: Path, slug: str) -> list[str]:
    """The steps that failed, timed out or errored in the newest run of ``slug``."""
    from hm.errors import UsageError
    from hm.run.records import RunStore, read_events

    runs = [r for r in RunStore(root).runs() if r.pipeline == slug and r.status != "running"]
    if not runs:
        raise UsageError(
            f"pipeline '{slug}' has no recorded run to take failed steps from",
            where="hm run --rerun-failed",
            hint="run it once with `hm run`",
        )
    return [
        e["step_key"]
        for e in read_events(runs[0])
        if e.get("kind") == "step_finished" and e.get("status") in ("failed", "timed_out", "error")
    ]


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
