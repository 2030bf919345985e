"""``hm pipelines``: each pipeline of the project with its steps, chains and runners."""

from __future__ import annotations

from typing import Any

from hm.cli import output
from hm.cli.options import FormatOption
from hm.cli.output import safe
from hm.cli.session import SESSION


def pipelines(format: FormatOption = "human") -> None:
    """List the project's pipelines: their steps, in chains and stages, and the runner of each."""
    from hm.pipeline import build_plan, project_pipelines
    from hm.pipeline.routing import route

    root = SESSION.project_root
    found = project_pipelines(root)
    registry = SESSION.registry
    docs: list[dict[str, Any]] = []
    for pipeline, path in found:
        plan = build_plan(pipeline)
        stages = [
            [
                {
                    "builds_in": c.parent_step,
                    "steps": [
                        {"key": s.key, "runner": route(s, pipeline, registry.default_runner), "cmd": s.cmd}
                        for s in c.steps
                    ],
                }
                for c in stage.chains
            ]
            for stage in plan.stages
        ]
        docs.append({"slug": pipeline.slug, "file": str(path.relative_to(root)), "stages": stages})
    if format == "json":
        output.print_json(docs)
        return
    for doc in docs:
        count = sum(len(chain["steps"]) for stage in doc["stages"] for chain in stage)
        steps = f"{count} step{'' if count == 1 else 's'}"
        output.stdout.print(f"[bold]{safe(doc['slug'])}[/] ({safe(doc['file'])}): {steps}")
        for number, stage in enumerate(doc["stages"], 1):
            if len(doc["stages"]) > 1:
                output.stdout.print(f"  stage {number}")
            for chain in stage:
                line = " → ".join(f"{safe(s['key'])} [dim]({safe(s['runner'] or '?')})[/]" for s in chain["steps"])
                parent = f"[dim]{safe(chain['builds_in'])} → [/]" if chain["builds_in"] else ""
                output.stdout.print(f"    {parent}{line}")
