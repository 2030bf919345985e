"""Where a project's pipelines are, and which one ``hm run [SLUG] [--file FILE]`` means."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from hm.errors import PipelineError
from hm.pipeline import (
    CommandStep,
    Pipeline,
    PipelineSource,
    find_pipelines,
    find_project_root,
    select_pipeline,
)

EXAMPLE_HINT = """create .hm/pipeline.py, for example:
    from hm.dsl import pipeline, step
    @pipeline("ci")
    def ci(): step("build", "make")"""


def dsl_file(root: Path, name: str, *slugs: str) -> Path:
    """``.hm/<name>`` defining one pipeline per slug, each with one step ``<slug>-step``."""
    body = "from hm.dsl import pipeline, step\n" + "".join(
        f"\n@pipeline({slug!r})\ndef p_{i}():\n    step({slug + '-step'!r}, 'true')\n" for i, slug in enumerate(slugs)
    )
    path = root / ".hm" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def ir_file(path: Path, slug: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"slug": slug, "steps": [{"kind": "command", "key": "k", "cmd": "true"}]}))
    return path


def select_error(root: Path, slug: str | None = None, file: Path | None = None) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        select_pipeline(root, slug, file)
    return info.value


# --- find_project_root -----------------------------------------------------------------


def test_project_root_is_the_nearest_directory_with_dot_hm(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "sub" / ".hm").mkdir(parents=True)
    deep = tmp_path / "sub" / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == tmp_path.resolve() / "sub"
    assert find_project_root(tmp_path / "sub") == tmp_path.resolve() / "sub"


def test_project_root_falls_back_to_git_even_a_git_file(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: ../elsewhere\n")
    (tmp_path / "src").mkdir()
    assert find_project_root(tmp_path / "src") == tmp_path.resolve()


def test_a_dot_hm_file_is_not_a_project_marker(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / ".hm").write_text("not a directory")
    assert find_project_root(tmp_path / "inner") == tmp_path.resolve()


def test_project_root_from_a_file_starts_at_its_directory(tmp_path: Path) -> None:
    (tmp_path / "p" / ".hm").mkdir(parents=True)
    file = tmp_path / "p" / "README"
    file.write_text("x")
    assert find_project_root(file) == tmp_path.resolve() / "p"


def test_without_any_marker_the_start_directory_is_the_root(tmp_path: Path) -> None:
    start = tmp_path / "x" / "y"
    start.mkdir(parents=True)
    # tmp_path lives under /tmp; no ancestor of it is expected to hold .hm or .git.
    assert not any((d / ".hm").is_dir() or (d / ".git").exists() for d in start.resolve().parents)
    assert find_project_root(start) == start.resolve()


# --- find_pipelines --------------------------------------------------------------------


def test_pipeline_files_are_py_and_json_sorted_and_helpers_are_skipped(tmp_path: Path) -> None:
    hm = tmp_path / ".hm"
    (hm / "plugins").mkdir(parents=True)
    for name in ("b.py", "a.json", "_helpers.py", "c.py", "notes.txt", "d.toml"):
        (hm / name).write_text("")
    (hm / "dir.py").mkdir()
    assert find_pipelines(tmp_path) == [
        PipelineSource(hm / "a.json", "ir"),
        PipelineSource(hm / "b.py", "dsl"),
        PipelineSource(hm / "c.py", "dsl"),
    ]


def test_no_dot_hm_means_no_pipeline_files(tmp_path: Path) -> None:
    assert find_pipelines(tmp_path) == []


def test_a_helper_file_is_importable_but_never_rendered_on_its_own(tmp_path: Path) -> None:
    hm = tmp_path / ".hm"
    hm.mkdir()
    # Rendering this helper alone would fail (it raises), and it defines a pipeline of its own.
    (hm / "_helpers.py").write_text(
        "from hm.dsl import pipeline, step\n"
        "if __name__ == '__hm_pipeline__':\n"
        "    raise RuntimeError('helper rendered on its own')\n"
        "def build():\n    step('build', 'make')\n"
    )
    (hm / "pipeline.py").write_text(
        "from hm.dsl import pipeline\nfrom _helpers import build\n\n@pipeline('ci')\ndef ci():\n    build()\n"
    )
    assert select_pipeline(tmp_path, None, None) == Pipeline(slug="ci", steps=[CommandStep(key="build", cmd="make")])


# --- select_pipeline in a project ------------------------------------------------------


def test_the_only_pipeline_is_selected_without_a_slug(tmp_path: Path) -> None:
    dsl_file(tmp_path, "pipeline.py", "ci")
    assert select_pipeline(tmp_path, None, None) == Pipeline(slug="ci", steps=[CommandStep(key="ci-step", cmd="true")])
    assert select_pipeline(tmp_path, "ci", None).slug == "ci"


def test_several_pipelines_without_a_slug_are_listed_with_how_to_choose(tmp_path: Path) -> None:
    dsl_file(tmp_path, "a.py", "ci", "nightly")
    ir_file(tmp_path / ".hm" / "b.json", "deploy")
    err = select_error(tmp_path)
    # Files in name order, pipelines of a file in definition order.
    assert err.what == "3 pipelines found: ci (.hm/a.py), nightly (.hm/a.py), deploy (.hm/b.json)"
    assert err.hint == "choose one with `hm run SLUG`, e.g. `hm run ci`"
    assert err.where is None


def test_a_slug_selects_across_dsl_and_ir_files(tmp_path: Path) -> None:
    dsl_file(tmp_path, "a.py", "ci", "nightly")
    ir_file(tmp_path / ".hm" / "b.json", "deploy")
    assert select_pipeline(tmp_path, "nightly", None).steps == [CommandStep(key="nightly-step", cmd="true")]
    assert select_pipeline(tmp_path, "deploy", None).steps == [CommandStep(key="k", cmd="true")]


def test_an_unknown_slug_lists_the_available_ones(tmp_path: Path) -> None:
    dsl_file(tmp_path, "a.py", "ci")
    dsl_file(tmp_path, "b.py", "nightly")
    err = select_error(tmp_path, "cj")
    assert err.what == "no pipeline 'cj'; available: ci (.hm/a.py), nightly (.hm/b.py)"
    assert err.hint == "run one of them with `hm run SLUG`, e.g. `hm run ci`"


def test_no_pipeline_files_gives_the_example(tmp_path: Path) -> None:
    err = select_error(tmp_path)
    assert err.what == "no pipeline files (.py or .json) here"
    assert err.where == str(tmp_path / ".hm")
    # The path is said once: `error: /p/.hm: no pipeline files (.py or .json) here; create …`
    assert err.one_line().count(str(tmp_path)) == 1
    assert err.hint == EXAMPLE_HINT
    assert len(err.hint.splitlines()) == 4  # the sentence, then the three-line example

    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "_only_a_helper.py").write_text("X = 1\n")
    assert select_error(tmp_path).hint == EXAMPLE_HINT


def test_pipeline_files_that_define_nothing_give_the_example(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "a.py").write_text("X = 1\n")
    (tmp_path / ".hm" / "b.py").write_text("from hm.dsl import pipeline\n")
    err = select_error(tmp_path)
    assert err.what == "no pipeline is defined in a.py, b.py"
    assert err.where == str(tmp_path / ".hm")
    assert err.hint == EXAMPLE_HINT


def test_the_example_in_the_hint_works_exactly_as_written(tmp_path: Path) -> None:
    hint = select_error(tmp_path).hint
    assert hint is not None
    first, *example = hint.splitlines()
    assert first == "create .hm/pipeline.py, for example:"
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "pipeline.py").write_text(textwrap.dedent("\n".join(example)) + "\n")
    assert select_pipeline(tmp_path, None, None) == Pipeline(slug="ci", steps=[CommandStep(key="build", cmd="make")])


def test_a_slug_defined_in_two_files_is_an_error_naming_both(tmp_path: Path) -> None:
    dsl_file(tmp_path, "a.py", "ci")
    ir_file(tmp_path / ".hm" / "b.json", "ci")
    err = select_error(tmp_path, "ci")
    assert err.what == "pipeline 'ci' is defined twice: in .hm/a.py and .hm/b.json"
    assert err.hint == "rename one of them"


def test_a_broken_file_is_reported_even_when_another_pipeline_is_asked_for(tmp_path: Path) -> None:
    dsl_file(tmp_path, "a.py", "ci")
    (tmp_path / ".hm" / "b.py").write_text("from hm.dsl import pipeline\n\nraise RuntimeError('broken')\n")
    err = select_error(tmp_path, "ci")
    assert (err.what, err.where) == ("RuntimeError: broken", ".hm/b.py:3")

    (tmp_path / ".hm" / "b.py").unlink()
    (tmp_path / ".hm" / "c.json").write_text('{"slug": "x", "steps": [{"kind": "command", "key": "k"}]}')
    err = select_error(tmp_path, "ci")
    assert err.where == ".hm/c.json at $.steps[0]"


def test_project_files_render_with_the_project_root_as_cwd(tmp_path: Path) -> None:
    (tmp_path / "version.txt").write_text("1.2.3\n")
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "p.py").write_text(
        "from hm.dsl import pipeline, step\n\n@pipeline('ci')\ndef ci():\n"
        "    step('v', 'echo ' + open('version.txt').read().strip())\n"
    )
    assert select_pipeline(tmp_path, None, None).steps == [CommandStep(key="v", cmd="echo 1.2.3")]


# --- --file ----------------------------------------------------------------------------


def test_file_with_a_py_file_ignores_the_project(tmp_path: Path) -> None:
    dsl_file(tmp_path, "pipeline.py", "project-one")
    other = tmp_path / "elsewhere" / "release.py"
    other.parent.mkdir()
    other.write_text(
        "from hm.dsl import pipeline, step\n\n@pipeline('release')\ndef r():\n    step('tag', 'git tag')\n"
    )
    assert select_pipeline(tmp_path, None, other) == Pipeline(
        slug="release", steps=[CommandStep(key="tag", cmd="git tag")]
    )


def test_file_with_a_json_file(tmp_path: Path) -> None:
    path = ir_file(tmp_path / "ir" / "p.json", "from-json")
    assert select_pipeline(tmp_path, None, path) == Pipeline(slug="from-json", steps=[CommandStep(key="k", cmd="true")])
    assert select_pipeline(tmp_path, "from-json", path).slug == "from-json"


def test_file_with_several_pipelines_needs_a_slug(tmp_path: Path) -> None:
    path = tmp_path / "multi.py"
    path.write_text(
        "from hm.dsl import pipeline, step\n\n"
        "@pipeline('a')\ndef a():\n    step('x', 'true')\n\n"
        "@pipeline('b')\ndef b():\n    step('y', 'true')\n"
    )
    err = select_error(tmp_path, None, path)
    assert err.what == "2 pipelines found: a (multi.py), b (multi.py)"
    assert err.hint == "choose one with `hm run SLUG`, e.g. `hm run a`"
    assert select_pipeline(tmp_path, "b", path).steps == [CommandStep(key="y", cmd="true")]
    assert select_error(tmp_path, "c", path).what == "no pipeline 'c'; available: a (multi.py), b (multi.py)"


def test_file_problems_are_explained(tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"
    err = select_error(tmp_path, None, missing)
    assert (err.what, err.where, err.hint) == (
        "pipeline file not found",
        str(missing),
        "check the path given to --file",
    )

    yaml = tmp_path / "p.yaml"
    yaml.write_text("steps: []\n")
    err = select_error(tmp_path, None, yaml)
    assert err.what == "cannot read pipelines from a '.yaml' file"
    assert err.hint == "give a Python DSL file (.py) or an IR JSON file (.json)"

    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    err = select_error(tmp_path, None, empty)
    assert (err.what, err.where) == ("the file defines no pipeline", str(empty))
    assert err.hint == 'decorate a function with @pipeline("slug") from hm.dsl'


def test_file_with_a_bad_json_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"slug": "ci", "steps": [{"kind": "command", "key": "k", "cmd": "x", "imgae": "y"}]}')
    err = select_error(tmp_path, None, path)
    assert err.where == "bad.json at $.steps[0]"
    assert err.hint is not None and err.hint.startswith("did you mean `image`?")
