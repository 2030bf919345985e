"""docs/pipelines.md stays true: every example on it renders or decodes and passes
validation, and every DSL argument and IR field has its row in a table."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from conftest import ROOT

from hm import dsl
from hm.pipeline import CachePolicy, CommandStep, Pipeline, WaitStep, pipeline_from_json, render_file, validate
from hm.pipeline.routing import RunnerInfo

DOC = ROOT / "docs" / "pipelines.md"
TEXT = DOC.read_text()
_BLOCK = re.compile(r"^```(?P<lang>\w+)\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(lang: str) -> list[str]:
    return [m["body"] for m in _BLOCK.finditer(TEXT) if m["lang"] == lang]


def check(pipeline: Pipeline) -> None:
    # The two bundled runners, as their manifests describe them.
    warnings = validate(
        pipeline,
        runners={"shell", "container"},
        default_runner="shell",
        source="docs/pipelines.md",
        runner_info={"container": RunnerInfo(images=True)},
    )
    assert warnings == []


@pytest.mark.parametrize("body", blocks("python"), ids=lambda b: b.splitlines()[0])
def test_every_python_example_is_a_pipeline_file_that_renders_and_validates(body: str, tmp_path: Path) -> None:
    first = body.splitlines()[0]
    assert first.startswith("# .hm/"), "a Python example starts with the name of the file it is"
    path = tmp_path / first.removeprefix("# ")
    path.parent.mkdir(parents=True)
    path.write_text(body)
    pipelines = render_file(path, cwd=tmp_path)
    assert pipelines
    for p in pipelines:
        check(p)


@pytest.mark.parametrize("body", blocks("json"), ids=lambda b: b[:30])
def test_every_json_example_is_valid_ir(body: str) -> None:
    check(pipeline_from_json(body.encode(), source="docs/pipelines.md"))


def table_rows() -> set[str]:
    """The first cell of every table row, without its backticks."""
    return {m[1] for m in re.finditer(r"^\| `([^`]+)` \|", TEXT, re.MULTILINE)}


@pytest.mark.parametrize("fn", [dsl.pipeline, dsl.step, dsl.wait], ids=lambda f: f.__name__)
def test_every_dsl_argument_has_a_row(fn: object) -> None:
    missing = set(inspect.signature(fn).parameters) - table_rows()  # type: ignore[arg-type]
    assert not missing, f"docs/pipelines.md does not describe {fn.__name__}() argument(s) {sorted(missing)}"  # type: ignore[attr-defined]
    assert f"### `{fn.__name__}(" in TEXT  # type: ignore[attr-defined]


@pytest.mark.parametrize("struct", [Pipeline, CommandStep, WaitStep, CachePolicy], ids=lambda s: s.__name__)
def test_every_ir_field_has_a_row(struct: type) -> None:
    fields = set(struct.__struct_fields__)  # type: ignore[attr-defined]
    if struct in (CommandStep, WaitStep):
        fields.add("kind")
    missing = fields - table_rows()
    assert not missing, f"docs/pipelines.md does not describe {struct.__name__} field(s) {sorted(missing)}"


def test_the_dsl_exports_are_all_described() -> None:
    for name in dsl.__all__:
        assert f"`{name}" in TEXT, name
