"""Where a project's pipelines are, and which one ``hm run`` runs.

A project is the nearest directory with ``.hm/`` (or ``.git``). Its pipelines are
``.hm/*.py`` (DSL) and ``.hm/*.json`` (IR). ``.hm/_*.py`` files are helpers that
pipeline files may import; they are not rendered on their own.

Selecting renders *every* pipeline file, even when a slug is given: the slug lives
inside the files, and a slug defined twice must be an error, not a coin toss. So a
broken pipeline file is reported even when another file's pipeline was asked for.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from hm.errors import PipelineError
from hm.pipeline.ir import Pipeline
from hm.pipeline.origin import Origin
from hm.pipeline.render import load_ir_file_located, render_file_located

__all__ = ["PipelineSource", "find_pipelines", "find_project_root", "select_located", "select_pipeline"]

_EXAMPLE: Final = """create .hm/pipeline.py, for example:
    from hm.dsl import pipeline, step
    @pipeline("ci")
    def ci(): step("build", "make")"""

_KINDS: Final[dict[str, Literal["dsl", "ir"]]] = {".py": "dsl", ".json": "ir"}


@dataclass(frozen=True, slots=True)
class PipelineSource:
    """A pipeline file: ``dsl`` (Python, rendered in a child process) or ``ir`` (JSON)."""

    path: Path
    kind: Literal["dsl", "ir"]

    def load(self, *, project_root: Path) -> list[Pipeline]:
        """The pipelines this file defines (rendered with ``project_root`` as cwd)."""
        return [p for p, _ in self.load_located(project_root=project_root)]

    def load_located(self, *, project_root: Path) -> list[tuple[Pipeline, Origin]]:
        """:meth:`load`, with where each pipeline and its steps were written."""
        if self.kind == "dsl":
            return render_file_located(self.path, cwd=project_root)
        return [load_ir_file_located(self.path, cwd=project_root)]


def find_project_root(start: Path) -> Path:
    """The nearest of ``start`` and its ancestors holding ``.hm/`` or ``.git``, else ``start``."""
    start = Path(start).resolve()
    if start.is_file():
        start = start.parent
    for directory in (start, *start.parents):
        # .git may be a file (worktrees, submodules), so only its existence counts.
        if (directory / ".hm").is_dir() or (directory / ".git").exists():
            return directory
    return start


def find_pipelines(project_root: Path) -> list[PipelineSource]:
    """The project's pipeline files, sorted by name."""
    folder = Path(project_root) / ".hm"
    if not folder.is_dir():
        return []
    return [
        PipelineSource(path, _KINDS[path.suffix])
        for path in sorted(folder.iterdir())
        if path.suffix in _KINDS and path.is_file() and not (path.suffix == ".py" and path.name.startswith("_"))
    ]


def select_pipeline(project_root: Path, slug: str | None, file: Path | None) -> Pipeline:
    """The pipeline ``hm run [SLUG] [--file FILE]`` means.

    :param file: a DSL or IR file given with ``--file``; the project's ``.hm/`` is then ignored.
    :raises PipelineError: nothing found, a slug that does not exist or is ambiguous,
        or any pipeline file that cannot be loaded.
    """
    return select_located(project_root, slug, file)[0]


def select_located(project_root: Path, slug: str | None, file: Path | None) -> tuple[Pipeline, Origin]:
    """:func:`select_pipeline`, plus where the pipeline was written (for validation messages)."""
    project_root = Path(project_root)
    if file is not None:
        source = _source_for(Path(file))
        found = [(p, source.path, o) for p, o in source.load_located(project_root=project_root)]
        if not found:
            raise PipelineError(
                "the file defines no pipeline",
                where=str(file),
                hint='decorate a function with @pipeline("slug") from hm.dsl',
            )
    else:
        found = _load_project(project_root)
    return _pick(found, slug, project_root)


def project_pipelines(project_root: Path) -> list[tuple[Pipeline, Path]]:
    """Every pipeline of the project, with the file it is in.

    :raises PipelineError: no pipeline files, or one that cannot be loaded.
    """
    return [(p, path) for p, path, _ in _load_project(Path(project_root))]


def _source_for(file: Path) -> PipelineSource:
    if not file.is_file():
        raise PipelineError("pipeline file not found", where=str(file), hint="check the path given to --file")
    kind = _KINDS.get(file.suffix)
    if kind is None:
        raise PipelineError(
            f"cannot read pipelines from a '{file.suffix}' file",
            where=str(file),
            hint="give a Python DSL file (.py) or an IR JSON file (.json)",
        )
    return PipelineSource(file, kind)


def _load_project(root: Path) -> list[tuple[Pipeline, Path, Origin]]:
    sources = find_pipelines(root)
    if not sources:
        raise PipelineError("no pipeline files (.py or .json) here", where=str(root / ".hm"), hint=_EXAMPLE)
    # Rendering is a subprocess per file, so threads overlap them well.
    with ThreadPoolExecutor(max_workers=min(len(sources), os.cpu_count() or 1, 8)) as pool:
        futures = [pool.submit(source.load_located, project_root=root) for source in sources]
    found: list[tuple[Pipeline, Path, Origin]] = []
    first: dict[str, Path] = {}
    for source, future in zip(sources, futures, strict=True):
        for p, origin in future.result():  # re-raises the file's PipelineError, first file first
            if p.slug in first:
                raise PipelineError(
                    f"pipeline '{p.slug}' is defined twice: in {_rel(first[p.slug], root)} "
                    f"and {_rel(source.path, root)}",
                    where=str(root / ".hm"),
                    hint="rename one of them",
                )
            first[p.slug] = source.path
            found.append((p, source.path, origin))
    if not found:
        names = ", ".join(s.path.name for s in sources)
        raise PipelineError(f"no pipeline is defined in {names}", where=str(root / ".hm"), hint=_EXAMPLE)
    return found


def _pick(found: list[tuple[Pipeline, Path, Origin]], slug: str | None, root: Path) -> tuple[Pipeline, Origin]:
    listing = ", ".join(f"{p.slug} ({_rel(path, root)})" for p, path, _ in found)
    if slug is None:
        if len(found) == 1:
            return found[0][0], found[0][2]
        raise PipelineError(
            f"{len(found)} pipelines found: {listing}",
            hint=f"choose one with `hm run SLUG`, e.g. `hm run {found[0][0].slug}`",
        )
    for p, _, origin in found:
        if p.slug == slug:
            return p, origin
    raise PipelineError(
        f"no pipeline '{slug}'; available: {listing}",
        hint=f"run one of them with `hm run SLUG`, e.g. `hm run {found[0][0].slug}`",
    )


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
