"""The Python DSL (``hm.dsl``) and rendering DSL files to IR in a child process.

The DSL is exercised in-process (what each call builds, which mistakes it reports
and at which line) and through :func:`render_file`, a real ``python`` child, for
everything a pipeline file can do wrong: bad syntax, exceptions, output on stdout,
hanging, spawning processes, crashing or replying garbage.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hm import dsl
from hm.dsl import CachePolicy, PipelineDef, pipeline, step, wait
from hm.errors import ExitCode, PipelineError
from hm.pipeline import CommandStep, Pipeline, WaitStep, render_file
from hm.pipeline.render import render_file_located

HERE = __file__
STEP_HINT = "see step() in docs/pipelines.md for the arguments and their types"
OUTSIDE_HINT = (
    'call it inside a function decorated with @pipeline("slug"); hm calls that function to render the pipeline'
)
FIX_HINT = "fix the error at this line (hm imports pipeline files in a separate process)"


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """``@pipeline`` registers into a module-level list: start and end each test empty."""
    dsl._take_registered()
    yield
    dsl._take_registered()


def next_line(skip: int = 0) -> str:
    """``file:line`` of the line after the caller's (after ``skip`` more lines, e.g. a blank one)."""
    frame = sys._getframe(1)
    return f"{HERE}:{frame.f_lineno + 1 + skip}"


def rendered(fn: Callable[[], object], slug: str = "t") -> Pipeline:
    definition = pipeline(slug)(fn)
    dsl._take_registered()
    return definition.render()


def render_error(fn: Callable[[], object]) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        rendered(fn)
    return info.value


# --- the DSL, in-process ---------------------------------------------------------------


def test_pipeline_registers_and_render_collects_steps_in_order() -> None:
    where = next_line(skip=1)

    @pipeline("ci", env={"CI": "1"}, default_image="debian:12")
    def ci() -> None:
        build = step("build", "make", label="Build", env={"CC": "gcc"}, image="gcc:14", timeout_seconds=60)
        step("test", "make test", builds_in=build, runner="shell", runner_args={"shell": "/bin/bash", "n": [1]})
        wait()
        step("lint", "ruff", cache="read")
        wait("gate", continue_on_failure=True)
        step("pkg", "make pkg", cache=CachePolicy(policy="read_write", key="k"), builds_in="build")

    assert isinstance(ci, PipelineDef)
    assert (ci.slug, ci.env, ci.default_image, ci.defined_at) == ("ci", {"CI": "1"}, "debian:12", where)
    assert dsl._take_registered() == [ci]
    assert dsl._take_registered() == []
    assert ci.render() == Pipeline(
        slug="ci",
        env={"CI": "1"},
        default_image="debian:12",
        steps=[
            CommandStep(
                key="build", label="Build", cmd="make", env={"CC": "gcc"}, image="gcc:14", timeout_seconds=60.0
            ),
            CommandStep(
                key="test",
                cmd="make test",
                builds_in="build",
                runner="shell",
                runner_args={"shell": "/bin/bash", "n": [1]},
            ),
            WaitStep(),
            CommandStep(key="lint", cmd="ruff", cache=CachePolicy(policy="read")),
            WaitStep(key="gate", continue_on_failure=True),
            CommandStep(key="pkg", cmd="make pkg", cache=CachePolicy(policy="read_write", key="k"), builds_in="build"),
        ],
    )


def test_step_returns_the_key_as_handle_and_wait_returns_none() -> None:
    got: list[object] = []
    rendered(lambda: got.extend([step("a", "x"), wait(), step("b", "y", builds_in="a")]))
    assert got == ["a", None, "b"]


def test_steps_can_be_declared_in_helper_functions() -> None:
    def lint_steps(*tools: str) -> None:
        for tool in tools:
            step(f"lint-{tool}", tool)

    def body() -> None:
        step("build", "make")
        lint_steps("ruff", "mypy")

    assert [s.key for s in rendered(body).steps] == ["build", "lint-ruff", "lint-mypy"]


def test_render_is_repeatable_and_pipelines_do_not_share_steps() -> None:
    a = pipeline("a")(lambda: step("x", "1"))
    b = pipeline("b")(lambda: step("x", "2"))
    assert a.render() == a.render()
    assert [s.cmd for s in b.render().steps] == ["2"]  # type: ignore[union-attr]


def test_step_outside_a_pipeline_names_the_call_line() -> None:
    with pytest.raises(PipelineError) as info:
        where = next_line()
        step("build", "make")
    assert info.value.what == "step('build') was called outside a @pipeline function"
    assert info.value.where == where
    assert info.value.hint == OUTSIDE_HINT
    assert info.value.exit_code == ExitCode.PIPELINE_INVALID


def test_wait_outside_a_pipeline_names_the_call_line() -> None:
    with pytest.raises(PipelineError) as info:
        where = next_line()
        wait()
    assert (info.value.what, info.value.where) == ("wait() was called outside a @pipeline function", where)


def test_a_step_after_render_finished_is_outside_again() -> None:
    rendered(lambda: step("a", "x"))
    with pytest.raises(PipelineError, match="outside a @pipeline function"):
        step("b", "y")


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"key": 1, "cmd": "x"}, "step(1): argument `key`: Expected `str`, got `int`"),
        ({"key": "a", "cmd": ["make"]}, "step('a'): argument `cmd`: Expected `str`, got `array`"),
        (
            {"key": "a", "cmd": "x", "timeout_seconds": "5"},
            "step('a'): argument `timeout_seconds`: Expected `float | null`, got `str`",
        ),
        (
            {"key": "a", "cmd": "x", "timeout_seconds": True},
            "step('a'): argument `timeout_seconds`: Expected `float | null`, got `bool`",
        ),
        ({"key": "a", "cmd": "x", "env": {"A": 1}}, "step('a'): argument `env[...]`: Expected `str`, got `int`"),
        ({"key": "a", "cmd": "x", "label": 5}, "step('a'): argument `label`: Expected `str | null`, got `int`"),
        ({"key": "a", "cmd": "x", "builds_in": 3}, "step('a'): argument `builds_in`: Expected `str | null`, got `int`"),
        (
            {"key": "a", "cmd": "x", "cache": "always"},
            "step('a'): argument `cache.policy`: Invalid enum value 'always'",
        ),
    ],
)
def test_step_argument_types_are_checked_at_the_call_line(kwargs: dict[str, object], what: str) -> None:
    where: list[str] = []

    def body() -> None:
        where.append(next_line())
        step(**kwargs)  # type: ignore[arg-type]

    err = render_error(body)
    assert (err.what, err.where, err.hint) == (what, where[0], STEP_HINT)


def test_list_as_cmd_is_reported_as_array() -> None:
    # The parametrised case above relies on this msgspec wording; keep it visible.
    err = render_error(lambda: step("a", ("make",)))  # type: ignore[arg-type]
    assert err.what == "step('a'): argument `cmd`: Expected `str`, got `array`"


def test_runner_args_must_be_json_data() -> None:
    err = render_error(lambda: step("a", "x", runner_args={"o": object()}))
    assert err.what == "step('a'): runner_args must be JSON data: Encoding objects of type object is unsupported"
    assert err.hint == "use only str, int, float, bool, None, lists and str-keyed dicts in runner_args"


def test_a_non_string_runner_args_key_names_the_argument() -> None:
    err = render_error(lambda: step("a", "x", runner_args={1: "x"}))  # type: ignore[dict-item]
    assert err.what.startswith("step('a'): argument `runner_args")
    assert "- at `" not in err.what


@pytest.mark.parametrize("env", ["A=1", 5])
def test_a_non_mapping_env_is_a_type_error_naming_the_argument(env: object) -> None:
    err = render_error(lambda: step("a", "x", env=env))  # type: ignore[arg-type]
    assert err.what.startswith("step('a'): argument `env`")


def test_wait_argument_types_are_checked() -> None:
    err = render_error(lambda: wait(3))  # type: ignore[arg-type]
    assert err.what == "wait(): argument `key`: Expected `str | null`, got `int`"
    assert err.hint == "see wait() in docs/pipelines.md for the arguments and their types"
    err = render_error(lambda: wait(continue_on_failure="yes"))  # type: ignore[arg-type]
    assert err.what == "wait(): argument `continue_on_failure`: Expected `bool`, got `str`"


def test_a_duplicate_step_key_points_at_both_calls() -> None:
    lines: list[str] = []

    def body() -> None:
        lines.append(next_line())
        step("a", "x")
        wait("w")
        lines.append(next_line())
        step("a", "y")

    err = render_error(body)
    assert err.what == f"step key 'a' is already used in pipeline 't' at {lines[0]}"
    assert err.where == lines[1]
    assert err.hint == "give every step a unique key"


def test_pipeline_arguments_are_checked_at_the_decorator_line() -> None:
    with pytest.raises(PipelineError) as info:
        where = next_line()
        pipeline(3)  # type: ignore[arg-type]
    assert info.value.what == "@pipeline: argument `slug`: Expected `str`, got `int`"
    assert info.value.where == where
    assert info.value.hint == "see pipeline() in docs/pipelines.md for the arguments and their types"
    with pytest.raises(PipelineError, match=re.escape("@pipeline: argument `env[...]`: Expected `str`, got `int`")):
        pipeline("t", env={"A": 2})  # type: ignore[dict-item]
    with pytest.raises(PipelineError, match=re.escape("argument `default_image`: Expected `str | null`, got `int`")):
        pipeline("t", default_image=3)  # type: ignore[arg-type]


def test_bare_at_pipeline_without_slug_is_explained() -> None:
    with pytest.raises(PipelineError) as info:
        where = next_line(skip=1)

        @pipeline  # type: ignore[arg-type]
        def ci() -> None:
            pass

    assert info.value.what == "@pipeline needs a slug"
    assert info.value.where == where
    assert info.value.hint == 'write @pipeline("ci") above the function, not @pipeline'


def test_a_slug_defined_twice_names_the_first_definition() -> None:
    first = next_line()
    pipeline("ci")(lambda: None)
    with pytest.raises(PipelineError) as info:
        second = next_line()
        pipeline("ci")(lambda: None)
    assert info.value.what == f"pipeline 'ci' is already defined at {first}"
    assert info.value.where == second


# --- rendering files in a child process ------------------------------------------------

HEADER = "from hm.dsl import pipeline, step, wait\n"


def write(root: Path, text: str, name: str = "pipeline.py") -> Path:
    path = root / ".hm" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + textwrap.dedent(text).lstrip("\n"))
    return path


def render_fails(root: Path, text: str, *, timeout: float = 10) -> PipelineError:
    path = write(root, text)
    with pytest.raises(PipelineError) as info:
        render_file(path, cwd=root, timeout=timeout)
    return info.value


def test_render_file_returns_every_pipeline_of_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        @pipeline("ci")
        def ci():
            b = step("build", "make")
            step("test", "make test", builds_in=b)
            wait(continue_on_failure=True)

        @pipeline("cd", env={"A": "1"}, default_image="img")
        def cd():
            step("deploy", "make deploy", timeout_seconds=5)
        """,
    )
    assert render_file(path, cwd=tmp_path) == [
        Pipeline(
            slug="ci",
            steps=[
                CommandStep(key="build", cmd="make"),
                CommandStep(key="test", cmd="make test", builds_in="build"),
                WaitStep(continue_on_failure=True),
            ],
        ),
        Pipeline(
            slug="cd",
            env={"A": "1"},
            default_image="img",
            steps=[CommandStep(key="deploy", cmd="make deploy", timeout_seconds=5.0)],
        ),
    ]


def test_a_file_without_pipelines_renders_to_nothing(tmp_path: Path) -> None:
    assert render_file(write(tmp_path, "X = 1\n"), cwd=tmp_path) == []


def test_rendering_runs_in_the_project_root_and_imports_helpers_next_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The render process itself must keep .hm/ free of __pycache__, whatever the environment says.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    (tmp_path / "targets.txt").write_text("alpha\nbeta\n")
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "_helpers.py").write_text(
        "from hm.dsl import step\n\ndef targets(names):\n    for n in names:\n        step(n, 'make ' + n)\n"
    )
    path = write(
        tmp_path,
        """
        import os
        from _helpers import targets

        @pipeline("ci")
        def ci():
            targets(open("targets.txt").read().split())
            step("cwd", os.getcwd())
        """,
    )
    (p,) = render_file(path, cwd=tmp_path)
    assert [(s.key, s.cmd) for s in p.steps] == [  # type: ignore[union-attr]
        ("alpha", "make alpha"),
        ("beta", "make beta"),
        ("cwd", str(tmp_path.resolve())),
    ]
    assert not (tmp_path / ".hm" / "__pycache__").exists()


def test_render_reports_the_line_of_the_decorator_and_of_every_step_call(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "_helpers.py").write_text("from hm.dsl import step\n\ndef lint():\n    step('lint', 'ruff')\n")
    path = write(
        tmp_path,
        """
        from _helpers import lint

        @pipeline("ci")
        def ci():
            step("build", "make")
            wait()
            lint()
        """,
    )
    first = len(HEADER.splitlines()) + 1  # the line of the text's first line ("from _helpers …")
    ((p, origin),) = render_file_located(path, cwd=tmp_path)
    assert [getattr(s, "key", None) for s in p.steps] == ["build", None, "lint"]
    assert origin.file == ".hm/pipeline.py" and origin.line == first + 2
    assert origin.steps == (f".hm/pipeline.py:{first + 4}", f".hm/pipeline.py:{first + 5}", ".hm/_helpers.py:4")
    assert origin.where == f".hm/pipeline.py:{first + 2}"


def test_a_syntax_error_is_shown_as_file_and_line(tmp_path: Path) -> None:
    err = render_fails(
        tmp_path,
        """
        @pipeline("ci")
        def ci()
            step("a", "true")
        """,
    )
    assert err.what == "SyntaxError: expected ':'"
    assert err.where == ".hm/pipeline.py:3"
    assert err.hint == "fix the syntax; the file must be valid Python"
    assert err.exit_code == ExitCode.PIPELINE_INVALID


def test_a_syntax_error_in_an_imported_helper_points_at_the_helper(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "_helpers.py").write_text("x = 1\ndef broken(:\n    pass\n")
    err = render_fails(tmp_path, "import _helpers\n")
    assert err.what.startswith("SyntaxError: ")
    assert err.where == ".hm/_helpers.py:2"


def test_an_exception_is_shown_at_the_deepest_frame_of_the_file(tmp_path: Path) -> None:
    err = render_fails(
        tmp_path,
        """
        def helper():
            raise ValueError("boom")

        @pipeline("ci")
        def ci():
            step("a", "true")
            helper()
        """,
    )
    assert (err.what, err.where, err.hint) == ("ValueError: boom", ".hm/pipeline.py:3", FIX_HINT)


def test_an_exception_raised_in_a_library_names_both_places(tmp_path: Path) -> None:
    err = render_fails(
        tmp_path,
        """
        import json

        @pipeline("ci")
        def ci():
            json.loads("not json")
        """,
    )
    assert err.what == "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"
    assert err.where == ".hm/pipeline.py:6"
    assert err.hint is not None
    assert err.hint.startswith("raised at ") and " in raw_decode; " in err.hint
    assert "json" in err.hint.split(" in raw_decode")[0] and err.hint.endswith(FIX_HINT)


def test_an_exception_at_import_time_names_its_line(tmp_path: Path) -> None:
    err = render_fails(tmp_path, "x = 1\nraise RuntimeError('at import')\n")
    assert (err.what, err.where) == ("RuntimeError: at import", ".hm/pipeline.py:3")


def test_a_dsl_mistake_in_a_file_names_the_call_line(tmp_path: Path) -> None:
    err = render_fails(
        tmp_path,
        """
        @pipeline("ci")
        def ci():
            step("a", "true")
            step("b", "true", timeout_seconds="5")
        """,
    )
    assert err.what == "step('b'): argument `timeout_seconds`: Expected `float | null`, got `str`"
    assert err.where == ".hm/pipeline.py:5"
    assert err.hint == STEP_HINT


def test_step_at_module_level_of_a_file_is_outside_a_pipeline(tmp_path: Path) -> None:
    err = render_fails(tmp_path, "X = 1\nstep('a', 'true')\n")
    assert err.what == "step('a') was called outside a @pipeline function"
    assert err.where == ".hm/pipeline.py:3"
    assert err.hint == OUTSIDE_HINT


def test_duplicates_in_a_file_point_at_the_second_and_name_the_first(tmp_path: Path) -> None:
    err = render_fails(
        tmp_path,
        """
        @pipeline("ci")
        def a():
            step("x", "true")
            step("x", "false")
        """,
    )
    first = tmp_path.resolve() / ".hm" / "pipeline.py"
    assert err.what == f"step key 'x' is already used in pipeline 'ci' at {first}:4"
    assert err.where == ".hm/pipeline.py:5"

    err = render_fails(tmp_path, '@pipeline("ci")\ndef a(): pass\n\n@pipeline("ci")\ndef b(): pass\n')
    assert err.what == f"pipeline 'ci' is already defined at {first}:2"
    assert err.where == ".hm/pipeline.py:5"


def test_a_pipeline_function_that_cannot_be_called_points_at_its_definition(tmp_path: Path) -> None:
    err = render_fails(tmp_path, 'X = 1\n@pipeline("ci")\ndef ci(x):\n    step("a", "true")\n')
    assert err.what == "TypeError: ci() missing 1 required positional argument: 'x'"
    assert err.where == ".hm/pipeline.py:3"


def test_sys_exit_in_a_file_is_explained(tmp_path: Path) -> None:
    err = render_fails(tmp_path, "import sys\nsys.exit(2)\n")
    assert err.what == "the pipeline file called sys.exit(2)"
    assert err.where == ".hm/pipeline.py:3"
    assert err.hint == "a pipeline file must not exit: hm imports it to render its pipelines"


def test_output_on_stdout_does_not_corrupt_the_reply_and_is_passed_on(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """
        import os, subprocess, sys
        print('{"pipelines": []}')
        print("hello from print")
        os.write(1, b"raw fd 1\\n")
        subprocess.run([sys.executable, "-c", "print('from a child process')"], check=True)

        @pipeline("ci")
        def ci():
            print("while rendering")
            step("a", "true")
        """,
    )
    assert render_file(path, cwd=tmp_path) == [Pipeline(slug="ci", steps=[CommandStep(key="a", cmd="true")])]
    out, err = capfd.readouterr()
    assert out == ""
    for line in ('{"pipelines": []}', "hello from print", "raw fd 1", "from a child process", "while rendering"):
        assert line in err.splitlines()


def test_a_hanging_file_is_killed_at_the_timeout(tmp_path: Path) -> None:
    start = time.monotonic()
    err = render_fails(tmp_path, "import time\ntime.sleep(60)\n", timeout=0.5)
    assert time.monotonic() - start < 5
    assert err.what == "rendering took longer than 0.5 s and was stopped"
    assert err.where == ".hm/pipeline.py"
    assert err.hint == "a pipeline file should only declare steps; move slow work into the steps"


def _gone_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_timeout_also_kills_what_the_file_spawned(tmp_path: Path) -> None:
    # The grandchild inherits the render process's stderr pipe: if it survived, the host
    # would wait for it (30 s) after killing the render process.
    start = time.monotonic()
    err = render_fails(
        tmp_path,
        """
        import pathlib, subprocess, time
        child = subprocess.Popen(["sleep", "30"])
        pathlib.Path("grandchild.pid").write_text(str(child.pid))
        time.sleep(30)
        """,
        timeout=1,
    )
    assert time.monotonic() - start < 10
    assert err.what == "rendering took longer than 1 s and was stopped"
    pid = int((tmp_path / "grandchild.pid").read_text())
    deadline = time.monotonic() + 5
    while not _gone_or_zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone_or_zombie(pid), f"grandchild {pid} still running"


def test_a_thread_left_running_does_not_keep_the_render_alive(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        import threading, time
        threading.Thread(target=time.sleep, args=(30,)).start()

        @pipeline("ci")
        def ci():
            step("a", "true")
        """,
    )
    start = time.monotonic()
    assert [p.slug for p in render_file(path, cwd=tmp_path, timeout=10)] == ["ci"]
    assert time.monotonic() - start < 5


def test_a_process_that_exits_early_without_reply_is_reported_with_its_output(tmp_path: Path) -> None:
    err = render_fails(tmp_path, "import os\nprint('last words', flush=True)\nos._exit(0)\n")
    assert err.what == "the render process printed nothing instead of its JSON reply; its last output:\n  last words"
    assert err.where == ".hm/pipeline.py"
    assert err.hint == "the file may end the process early (os._exit); otherwise report an hm bug"


def test_a_garbage_reply_is_reported(tmp_path: Path) -> None:
    # fd 3 is the render process's duplicate of its real stdout (the reply channel).
    err = render_fails(tmp_path, "import os\nos.write(3, b'garbage')\nos._exit(0)\n")
    assert err.what == "the render process printed b'garbage' instead of its JSON reply"


def test_a_non_zero_exit_is_reported(tmp_path: Path) -> None:
    err = render_fails(tmp_path, "import os, sys\nsys.stderr.write('dying\\n')\nsys.stderr.flush()\nos._exit(3)\n")
    assert err.what == "the render process exited with code 3; its last output:\n  dying"
    assert err.hint == (
        "something the file runs while rendering (native code, os.abort, a signal) "
        "killed the Python process; remove it from the pipeline file"
    )


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_a_crash_by_signal_is_named(tmp_path: Path) -> None:
    err = render_fails(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert err.what == "the render process was killed by signal SIGKILL"
    err = render_fails(tmp_path, "import os\nos.abort()\n")
    assert err.what.startswith("the render process was killed by signal SIGABRT")


def test_render_paths_outside_cwd_are_shown_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(tmp_path / "proj", "raise KeyError('k')\n")
    with pytest.raises(PipelineError) as info:
        render_file(path)
    assert info.value.where == f"{path.resolve()}:2"
    assert info.value.what == "KeyError: 'k'"
