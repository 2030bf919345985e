"""``hm plugin install`` and ``hm plugin remove`` on real fixture libraries, through the real CLI.

Every test has its own HM_HOME (conftest), so the user plugin folder is
``$HM_HOME/plugins``. The https path is exercised in-process with ``_open_url``
replaced: no test touches the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import BUILD, FIXTURES, ROOT, SUFFIX, fixture_path, run_hm

from hm.errors import PluginLoadError, UsageError
from hm.runtime import install as install_mod
from hm.runtime.install import install_plugin

# -- helpers --------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def user_dir(home: Path) -> Path:
    return home / "plugins"


def make_project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    (project / ".hm").mkdir(parents=True)
    (project / "sub").mkdir()
    return project


def listing(**kwargs) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def, type-arg]
    result = run_hm("plugin", "list", "--format", "json", **kwargs)
    assert result.returncode == 0, result.stderr
    by_name: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for p in json.loads(result.stdout)["plugins"]:
        by_name.setdefault(p["name"], []).append(p)
    return by_name


@pytest.fixture(scope="session")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """noop-executor rebuilt as version 2.0.0 (same name, different file), and renamed."""
    root = tmp_path_factory.mktemp("variants")
    shutil.copytree(ROOT / "fixtures" / "common", root / "common")
    built = {}
    for key, old, new in (
        ("noop-2.0.0", '"1.0.0"', '"2.0.0"'),
        ("renamed", '"noop-executor"', '"noop-renamed"'),
        ("rebuilt", '"Runs steps that do nothing; observes builds."', '"Rebuilt: same name, same version."'),
    ):
        src = root / key
        shutil.copytree(ROOT / "fixtures" / "noop-executor", src)
        c_file = src / "noop_executor.c"
        text = c_file.read_text()
        assert old in text
        c_file.write_text(text.replace(old, new))
        built[key] = BUILD.compile_c_plugin(src, root / "out" / f"{key}{SUFFIX}")
    return built


# -- installing -----------------------------------------------------------------------


def test_install_a_good_plugin_lists_it_as_a_user_plugin(hm_home: Path) -> None:
    result = run_hm("plugin", "install", str(fixture_path("noop-executor")))
    assert result.returncode == 0, result.stderr
    dest = user_dir(hm_home) / f"noop-executor{SUFFIX}"
    lines = result.stdout.splitlines()
    assert lines[0] == "installed noop-executor 1.0.0 into the user plugin folder"
    assert str(dest) in result.stdout
    assert "abi:      1.1" in result.stdout
    assert sha256(fixture_path("noop-executor")) in result.stdout
    assert "runner noop" in result.stdout
    assert dest.read_bytes() == fixture_path("noop-executor").read_bytes()
    assert [p.name for p in user_dir(hm_home).iterdir()] == [dest.name], "no temporary file is left behind"
    (rec,) = listing()["noop-executor"]
    assert rec["origin"] == "user" and rec["status"] == "ok" and rec["path"] == str(dest)


def test_install_json_is_one_document(hm_home: Path) -> None:
    result = run_hm("plugin", "install", str(fixture_path("recording-hook")), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "installed"
    assert doc["plugin"]["name"] == "recording-hook"
    assert doc["plugin"]["version"] == "1.0.0"
    assert doc["plugin"]["abi"] == "1.1"
    assert doc["plugin"]["sha256"] == sha256(fixture_path("recording-hook"))
    assert doc["plugin"]["path"] == str(user_dir(hm_home) / f"recording-hook{SUFFIX}")
    assert doc["replaced"] is None and doc["shadows"] == [] and doc["shadowed_by"] is None and doc["conflicts"] == []


def test_install_into_the_project_plugin_folder(tmp_path: Path, hm_home: Path) -> None:
    project = make_project(tmp_path)
    result = run_hm("plugin", "install", str(fixture_path("noop-executor")), "--project", cwd=project / "sub")
    assert result.returncode == 0, result.stderr
    assert "into this project's plugin folder" in result.stdout
    dest = project / ".hm" / "plugins" / f"noop-executor{SUFFIX}"
    assert dest.is_file()
    assert not user_dir(hm_home).exists()
    (rec,) = listing(cwd=project)["noop-executor"]
    assert rec["origin"] == "project" and rec["path"] == str(dest)


def test_project_install_outside_a_project_is_a_usage_error(tmp_path: Path, hm_home: Path) -> None:
    outside = tmp_path / "nowhere"
    outside.mkdir()
    result = run_hm("plugin", "install", str(fixture_path("noop-executor")), "--project", cwd=outside)
    assert result.returncode == 2
    assert "is not in an hm project" in result.stderr
    assert not (outside / ".hm").exists() and not user_dir(hm_home).exists()


def test_install_records_the_manifest_so_the_next_listing_runs_no_plugin_code(tmp_path: Path) -> None:
    env = {"HM_FIXTURE_LOAD_LOG": str(tmp_path / "loads.log")}
    assert run_hm("plugin", "install", str(fixture_path("noop-executor")), env=env).returncode == 0
    assert (tmp_path / "loads.log").read_text().split() == ["noop-executor"]  # the validation, in a child
    assert listing(env=env)["noop-executor"][0]["status"] == "ok"
    assert (tmp_path / "loads.log").read_text().split() == ["noop-executor"], "listing ran plugin code again"


def test_bad_abi_plugin_is_refused_and_nothing_is_written(hm_home: Path) -> None:
    source = str(fixture_path("bad-abi-version"))
    result = run_hm("plugin", "install", source)
    assert result.returncode == 4
    assert "9999" in result.stderr
    assert source in result.stderr
    assert result.stderr.rstrip().endswith("nothing was installed")
    assert "Traceback" not in result.stderr
    assert not user_dir(hm_home).exists()


def test_a_plugin_that_crashes_while_loading_is_refused_without_taking_hm_down(hm_home: Path) -> None:
    result = run_hm("plugin", "install", str(fixture_path("broken-crash-on-manifest")), env={"HM_FIXTURE_CRASH": "1"})
    assert result.returncode == 4
    assert "crashed with SIGABRT in manifest" in result.stderr
    assert "nothing was installed" in result.stderr
    assert not user_dir(hm_home).exists()


def test_an_invalid_manifest_is_refused(hm_home: Path) -> None:
    result = run_hm("plugin", "install", str(fixture_path("broken-manifest-no-name")))
    assert result.returncode == 4
    assert "nothing was installed" in result.stderr
    assert not user_dir(hm_home).exists()


# -- pins and URLs --------------------------------------------------------------------


def test_wrong_pin_is_refused_before_anything_is_written(hm_home: Path, tmp_path: Path) -> None:
    source = str(fixture_path("noop-executor"))
    wrong = "0" * 64
    env = {"HM_FIXTURE_LOAD_LOG": str(tmp_path / "loads.log")}
    result = run_hm("plugin", "install", source, "--pin", wrong, env=env)
    assert result.returncode == 2
    assert f"{source} does not match --pin: expected sha256 {wrong}, got sha256 {sha256(Path(source))}" in result.stderr
    assert not user_dir(hm_home).exists()
    assert not (tmp_path / "loads.log").exists(), "plugin code ran before the pin was checked"


def test_right_pin_installs_with_prefix_and_upper_case_accepted(hm_home: Path) -> None:
    source = fixture_path("noop-executor")
    result = run_hm("plugin", "install", str(source), "--pin", f"sha256:{sha256(source).upper()}")
    assert result.returncode == 0, result.stderr
    assert (user_dir(hm_home) / f"noop-executor{SUFFIX}").is_file()


def test_a_malformed_pin_is_a_usage_error() -> None:
    result = run_hm("plugin", "install", str(fixture_path("noop-executor")), "--pin", "abc")
    assert result.returncode == 2
    assert "not a SHA-256 digest" in result.stderr


@pytest.mark.parametrize(
    ("source", "extra", "message"),
    [
        (
            "http://example.com/p.so",
            ["--pin", "a" * 64],
            "refusing to download a plugin over plain http: http://example.com/p.so",
        ),
        ("https://example.com/p.so", [], "installing from an https URL needs --pin SHA256"),
        ("ftp://example.com/p.so", [], "cannot install from a ftp:// URL"),
        ("does/not/exist.so", [], "no such file: does/not/exist.so"),
    ],
)
def test_sources_that_are_refused_up_front(hm_home: Path, source: str, extra: list[str], message: str) -> None:
    result = run_hm("plugin", "install", source, *extra)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not user_dir(hm_home).exists()


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, url: str, length: int | None = None) -> None:
        super().__init__(data)
        self._url = url
        self.headers = {} if length is None else {"Content-Length": str(length)}

    def geturl(self) -> str:
        return self._url


def test_https_download_is_pinned_validated_and_installed(hm_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = fixture_path("noop-executor").read_bytes()
    url = "https://plugins.example/noop-executor.so"
    opened: list[tuple[str, float]] = []

    def fake_open(u: str, timeout: float) -> FakeResponse:
        opened.append((u, timeout))
        return FakeResponse(data, u, len(data))

    monkeypatch.setattr(install_mod, "_open_url", fake_open)
    result = install_plugin(url, pin=hashlib.sha256(data).hexdigest(), start=hm_home)
    assert opened == [(url, 60.0)]
    assert result.status == "installed" and result.plugin.name == "noop-executor"
    assert (user_dir(hm_home) / f"noop-executor{SUFFIX}").read_bytes() == data

    with pytest.raises(UsageError, match=r"does not match --pin"):
        install_plugin(url.replace("noop", "other"), pin="1" * 64, start=hm_home)


def test_https_download_with_a_bad_plugin_names_the_url(hm_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = fixture_path("bad-abi-version").read_bytes()
    url = "https://plugins.example/bad.so"
    monkeypatch.setattr(install_mod, "_open_url", lambda u, timeout: FakeResponse(data, u))
    with pytest.raises(PluginLoadError) as info:
        install_plugin(url, pin=hashlib.sha256(data).hexdigest(), start=hm_home)
    assert url in info.value.one_line() and "9999" in info.value.what
    assert info.value.hint is not None and info.value.hint.endswith("nothing was installed")
    assert not user_dir(hm_home).exists()


def test_https_download_is_capped(hm_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install_mod, "MAX_DOWNLOAD_BYTES", 1000)
    url = "https://plugins.example/huge.so"
    # A server that announces too much is refused before reading; one that lies is cut off.
    monkeypatch.setattr(install_mod, "_open_url", lambda u, timeout: FakeResponse(b"", u, 10**9))
    with pytest.raises(UsageError, match="larger than"):
        install_plugin(url, pin="a" * 64, start=hm_home)
    monkeypatch.setattr(install_mod, "_open_url", lambda u, timeout: FakeResponse(b"x" * 5000, u))
    with pytest.raises(UsageError, match="larger than"):
        install_plugin(url, pin="a" * 64, start=hm_home)
    assert not user_dir(hm_home).exists()


def test_download_ending_on_http_is_refused(hm_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = fixture_path("noop-executor").read_bytes()
    monkeypatch.setattr(install_mod, "_open_url", lambda u, timeout: FakeResponse(data, "http://evil.example/x.so"))
    with pytest.raises(UsageError, match="not https"):
        install_plugin("https://plugins.example/x.so", pin=hashlib.sha256(data).hexdigest(), start=hm_home)
    assert not user_dir(hm_home).exists()


def test_redirects_are_followed_only_to_https() -> None:
    handler = install_mod._HttpsOnlyRedirect()
    req = urllib.request.Request("https://a.example/p.so")
    with pytest.raises(UsageError, match="not https"):
        handler.redirect_request(req, None, 302, "Found", {}, "http://b.example/p.so")
    followed = handler.redirect_request(req, None, 302, "Found", {}, "https://b.example/p.so")
    assert followed is not None and followed.full_url == "https://b.example/p.so"


# -- what is already there ------------------------------------------------------------


def test_installing_an_identical_file_again_is_a_no_op(hm_home: Path) -> None:
    source = str(fixture_path("noop-executor"))
    assert run_hm("plugin", "install", source).returncode == 0
    dest = user_dir(hm_home) / f"noop-executor{SUFFIX}"
    before = dest.stat()
    result = run_hm("plugin", "install", source)
    assert result.returncode == 0, result.stderr
    assert "noop-executor 1.0.0 is already installed in the user plugin folder (identical file)" in result.stdout
    after = dest.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    doc = json.loads(run_hm("plugin", "install", source, "--format", "json").stdout)
    assert doc["status"] == "already_installed"


def test_a_newer_version_of_the_same_plugin_is_an_upgrade_without_force(
    hm_home: Path, variants: dict[str, Path]
) -> None:
    assert run_hm("plugin", "install", str(fixture_path("noop-executor"))).returncode == 0
    dest = user_dir(hm_home) / f"noop-executor{SUFFIX}"
    old_bytes = dest.read_bytes()
    old_inode = dest.stat().st_ino
    with dest.open("rb") as still_open:  # what a running hm holds: the old inode stays intact
        upgraded = run_hm("plugin", "install", str(variants["noop-2.0.0"]))
        assert upgraded.returncode == 0, upgraded.stderr
        assert still_open.read() == old_bytes
    assert upgraded.stdout.splitlines()[0] == "upgraded noop-executor 1.0.0 → 2.0.0 in the user plugin folder"
    assert f"replaced: noop-executor 1.0.0 (sha256 {hashlib.sha256(old_bytes).hexdigest()})" in upgraded.stdout
    assert dest.stat().st_ino != old_inode, "the file was rewritten in place, not replaced"
    assert dest.read_bytes() == variants["noop-2.0.0"].read_bytes()
    assert listing()["noop-executor"][0]["version"] == "2.0.0"
    assert [p.name for p in user_dir(hm_home).iterdir()] == [dest.name]


def test_an_upgrade_in_json(hm_home: Path, variants: dict[str, Path]) -> None:
    assert run_hm("plugin", "install", str(fixture_path("noop-executor"))).returncode == 0
    doc = json.loads(run_hm("plugin", "install", str(variants["noop-2.0.0"]), "--format", "json").stdout)
    assert doc["status"] == "upgraded"
    assert (doc["replaced"]["version"], doc["plugin"]["version"]) == ("1.0.0", "2.0.0")


def test_a_new_build_of_the_same_version_is_reinstalled_without_force(hm_home: Path, variants: dict[str, Path]) -> None:
    assert run_hm("plugin", "install", str(fixture_path("noop-executor"))).returncode == 0
    result = run_hm("plugin", "install", str(variants["rebuilt"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "reinstalled noop-executor 1.0.0 in the user plugin folder (a new build of the same version)"
    )
    dest = user_dir(hm_home) / f"noop-executor{SUFFIX}"
    assert dest.read_bytes() == variants["rebuilt"].read_bytes()


def test_an_older_version_needs_force(hm_home: Path, variants: dict[str, Path]) -> None:
    assert run_hm("plugin", "install", str(variants["noop-2.0.0"])).returncode == 0
    dest = user_dir(hm_home) / f"noop-executor{SUFFIX}"
    older = str(fixture_path("noop-executor"))
    refused = run_hm("plugin", "install", older)
    assert refused.returncode == 2
    assert (
        f"{dest} holds noop-executor 2.0.0, newer than noop-executor 1.0.0 from {older}; refusing to downgrade it"
        in refused.stderr
    )
    assert "add --force to install the older version, or `hm plugin remove noop-executor` first" in refused.stderr
    assert dest.read_bytes() == variants["noop-2.0.0"].read_bytes()
    forced = run_hm("plugin", "install", older, "--force", "--format", "json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["status"] == "replaced"
    assert listing()["noop-executor"][0]["version"] == "1.0.0"


def test_a_different_plugin_under_the_same_file_name_needs_force(hm_home: Path) -> None:
    # Someone put recording-hook's library where noop-executor installs.
    dest = user_dir(hm_home) / f"noop-executor{SUFFIX}"
    dest.parent.mkdir(parents=True)
    shutil.copy(fixture_path("recording-hook"), dest)
    old_bytes = dest.read_bytes()
    source = str(fixture_path("noop-executor"))
    refused = run_hm("plugin", "install", source)
    assert refused.returncode == 2
    assert (
        f"{dest} already holds recording-hook 1.0.0; refusing to replace it with noop-executor 1.0.0 from {source}"
        in refused.stderr
    )
    assert "add --force to replace it, or `hm plugin remove noop-executor` first" in refused.stderr
    assert dest.read_bytes() == old_bytes
    replaced = run_hm("plugin", "install", source, "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stdout.startswith("replaced noop-executor 1.0.0 into the user plugin folder")
    assert dest.read_bytes() == fixture_path("noop-executor").read_bytes()


def test_a_file_that_cannot_be_loaded_in_the_way_needs_force(hm_home: Path) -> None:
    dest = user_dir(hm_home) / f"noop-executor{SUFFIX}"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"not a library")
    refused = run_hm("plugin", "install", str(fixture_path("noop-executor")))
    assert refused.returncode == 2
    assert f"{dest} already holds a plugin that cannot be loaded (" in refused.stderr
    assert run_hm("plugin", "install", str(fixture_path("noop-executor")), "--force").returncode == 0


def test_the_file_is_named_after_the_manifest_not_the_source(hm_home: Path, variants: dict[str, Path]) -> None:
    result = run_hm("plugin", "install", str(variants["renamed"]))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in user_dir(hm_home).iterdir()) == [f"noop-renamed{SUFFIX}"]


# -- notes: shadowing and conflicts ---------------------------------------------------


def test_a_project_install_shadows_the_user_plugin(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    source = str(fixture_path("noop-executor"))
    assert run_hm("plugin", "install", source).returncode == 0
    result = run_hm("plugin", "install", source, "--project", "--format", "json", cwd=project)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [(s["name"], s["origin"]) for s in doc["shadows"]] == [("noop-executor", "user")]
    human = run_hm("plugin", "install", str(fixture_path("recording-hook")), cwd=project)
    assert "note:" not in human.stderr


def test_a_user_install_hidden_by_a_higher_precedence_plugin_says_so(tmp_path: Path) -> None:
    env = {"HM_PLUGIN_PATH": str(fixture_path("noop-executor"))}
    result = run_hm("plugin", "install", str(fixture_path("noop-executor")), env=env)
    assert result.returncode == 0, result.stderr
    assert "note:" in result.stderr and "takes precedence" in result.stderr
    assert str(fixture_path("noop-executor")) in result.stderr
    again = run_hm("plugin", "install", str(fixture_path("noop-executor")), "--format", "json", env=env)
    doc = json.loads(again.stdout)
    assert doc["shadowed_by"]["origin"] == "env"


def test_a_conflicting_claim_is_noted(tmp_path: Path) -> None:
    env = {"HM_PLUGIN_PATH": str(fixture_path("conflict-runner-b"))}
    result = run_hm("plugin", "install", str(fixture_path("conflict-runner-a")), env=env)
    assert result.returncode == 0, result.stderr
    assert "note: runner 'dup' is claimed by" in result.stderr
    assert str(fixture_path("conflict-runner-b")) in result.stderr


@pytest.mark.skipif(
    not (ROOT / "hm" / "bundled_plugins" / f"shell{SUFFIX}").exists(), reason="the bundled shell plugin is not built"
)
def test_shadowing_a_bundled_plugin_is_noted(tmp_path: Path) -> None:
    src = tmp_path / "src" / "shell-like"
    shutil.copytree(ROOT / "fixtures" / "noop-executor", src)
    shutil.copytree(ROOT / "fixtures" / "common", tmp_path / "src" / "common")
    c_file = src / "noop_executor.c"
    c_file.write_text(c_file.read_text().replace('"noop-executor"', '"shell"'))
    lib = BUILD.compile_c_plugin(src, tmp_path / "out" / f"shell-like{SUFFIX}")
    result = run_hm("plugin", "install", str(lib))
    assert result.returncode == 0, result.stderr
    assert "note: it shadows shell" in result.stderr and "bundled" in result.stderr


# -- removing -------------------------------------------------------------------------


def test_remove_deletes_the_file_and_says_from_where(hm_home: Path) -> None:
    assert run_hm("plugin", "install", str(fixture_path("noop-executor"))).returncode == 0
    dest = user_dir(hm_home) / f"noop-executor{SUFFIX}"
    result = run_hm("plugin", "remove", "noop-executor")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"removed noop-executor 1.0.0 from the user plugin folder: {dest}"
    assert not dest.exists()
    assert "noop-executor" not in listing()


def test_remove_from_the_project_notes_what_hm_uses_now(tmp_path: Path, hm_home: Path) -> None:
    project = make_project(tmp_path)
    source = str(fixture_path("noop-executor"))
    assert run_hm("plugin", "install", source).returncode == 0
    assert run_hm("plugin", "install", source, "--project", cwd=project).returncode == 0
    result = run_hm("plugin", "remove", "noop-executor", "--project", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "from this project's plugin folder" in result.stdout
    assert str(project / ".hm" / "plugins" / f"noop-executor{SUFFIX}") in result.stdout
    assert "note: hm now uses noop-executor 1.0.0 from the user plugin folder" in result.stderr
    (rec,) = listing(cwd=project)["noop-executor"]
    assert rec["origin"] == "user"


def test_remove_json(hm_home: Path) -> None:
    assert run_hm("plugin", "install", str(fixture_path("noop-executor"))).returncode == 0
    doc = json.loads(run_hm("plugin", "remove", "noop-executor", "--format", "json").stdout)
    assert doc["status"] == "removed" and doc["removed"]["version"] == "1.0.0" and doc["now_uses"] is None


def test_remove_unknown_is_a_helpful_usage_error(hm_home: Path) -> None:
    result = run_hm("plugin", "remove", "nope")
    assert result.returncode == 2
    looked = user_dir(hm_home) / f"nope{SUFFIX}"
    assert f"no plugin 'nope' in the user plugin folder (looked for {looked})" in result.stderr
    assert "hm plugin list" in result.stderr


def test_remove_names_where_a_plugin_on_hm_plugin_path_is(hm_home: Path) -> None:
    result = run_hm("plugin", "remove", "noop-executor", env={"HM_PLUGIN_PATH": str(FIXTURES)})
    assert result.returncode == 2
    assert "HM_PLUGIN_PATH" in result.stderr and str(fixture_path("noop-executor")) in result.stderr


def test_remove_points_at_the_other_folder(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert run_hm("plugin", "install", str(fixture_path("noop-executor")), "--project", cwd=project).returncode == 0
    result = run_hm("plugin", "remove", "noop-executor", cwd=project)
    assert result.returncode == 2
    assert "add --project" in result.stderr
    assert (project / ".hm" / "plugins" / f"noop-executor{SUFFIX}").exists()


@pytest.mark.skipif(
    not (ROOT / "hm" / "bundled_plugins" / f"shell{SUFFIX}").exists(), reason="the bundled shell plugin is not built"
)
def test_remove_a_bundled_plugin_explains_why_not() -> None:
    result = run_hm("plugin", "remove", "shell")
    assert result.returncode == 2
    assert "bundled with hm" in result.stderr


@pytest.mark.parametrize("name", ["../x", "Shell", "a/b", ""])
def test_remove_refuses_a_name_that_is_not_a_plugin_name(hm_home: Path, name: str) -> None:
    user_dir(hm_home).mkdir()
    victim = hm_home / f"x{SUFFIX}"  # what `plugins/../x.so` would be
    victim.write_bytes(b"not yours")
    result = run_hm("plugin", "remove", name)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert victim.exists()


def test_no_temporary_folder_is_left_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hm_home: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "t"))
    (tmp_path / "t").mkdir()
    run_hm("plugin", "install", str(fixture_path("bad-abi-version")))
    run_hm("plugin", "install", str(fixture_path("noop-executor")))
    assert os.listdir(tmp_path / "t") == []
    assert os.listdir(hm_home / "cache" / "install-staging") == []


# -- what a killed install leaves -------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_install_leaves_its_copy_where_the_next_install_sweeps_it(tmp_path: Path, hm_home: Path) -> None:
    # noop-executor rebuilt to hang in `manifest`: the install is killed while it validates.
    src = tmp_path / "src" / "slow"
    shutil.copytree(ROOT / "fixtures" / "noop-executor", src)
    shutil.copytree(ROOT / "fixtures" / "common", tmp_path / "src" / "common")
    c_file = src / "noop_executor.c"
    text = c_file.read_text()
    c_file.write_text(
        "#include <unistd.h>\n" + text.replace("    fx_begin_manifest(", "    sleep(5);\n    fx_begin_manifest(", 1)
    )
    slow = BUILD.compile_c_plugin(src, tmp_path / "out" / f"slow{SUFFIX}")
    staging = hm_home / "cache" / "install-staging"

    proc = subprocess.Popen(
        [sys.executable, "-m", "hm", "plugin", "install", str(slow)],
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group: the kill takes the validating child too
    )
    try:
        deadline = time.monotonic() + 30
        while not list(staging.glob(f"{proc.pid}.*-*/staged{SUFFIX}")) and time.monotonic() < deadline:
            time.sleep(0.05)
        (left,) = staging.glob(f"{proc.pid}.*-*")  # the staged copy is complete: validation runs now
        time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (left / f"staged{SUFFIX}").read_bytes() == slow.read_bytes(), "a killed install cannot clean up"

    result = run_hm("plugin", "install", str(fixture_path("noop-executor")))
    assert result.returncode == 0, result.stderr
    assert not left.exists()
    assert os.listdir(staging) == []


def test_stale_partial_files_and_old_staging_folders_are_swept_and_live_ones_kept(
    tmp_path: Path, hm_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = user_dir(hm_home)
    folder.mkdir()
    two_hours_ago = time.time() - 7200
    host = install_mod._host_tag()
    other_host = "0" * 8 if host != "0" * 8 else "1" * 8
    dead, alive = dead_pid(), os.getpid()  # this test process: an install "in progress"
    names = {
        "dead": f".noop-executor{SUFFIX}.{dead}.{host}.abcdefgh.partial",
        "alive": f".other{SUFFIX}.{alive}.{host}.abcdefgh.partial",
        # Another machine sharing this home folder: its pid means nothing here.
        "other_host": f".shared{SUFFIX}.{dead}.{other_host}.abcdefgh.partial",
        "other_host_old": f".shared-old{SUFFIX}.{dead}.{other_host}.abcdefgh.partial",
        # Written by an older hm: no pid.
        "old_no_pid": f".old{SUFFIX}.k2j3h4x9.partial",
        "new_no_pid": f".fresh{SUFFIX}.k2j3h4x9.partial",
    }
    for name in names.values():
        (folder / name).write_bytes(b"half a library")
    for old in ("old_no_pid", "other_host_old"):
        os.utime(folder / names[old], (two_hours_ago, two_hours_ago))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "t"))
    for legacy in ("hm-install-old", "hm-install-new"):
        (tmp_path / "t" / legacy).mkdir(parents=True)
        (tmp_path / "t" / legacy / f"staged{SUFFIX}").write_bytes(b"a staged copy")
    os.utime(tmp_path / "t" / "hm-install-old", (two_hours_ago, two_hours_ago))
    staging = hm_home / "cache" / "install-staging"
    (staging / f"{dead}.{host}-abcdefgh").mkdir(parents=True)
    (staging / f"{alive}.{host}-abcdefgh").mkdir()
    (staging / f"{dead}.{other_host}-abcdefgh").mkdir()

    result = run_hm("plugin", "install", str(fixture_path("noop-executor")))
    assert result.returncode == 0, result.stderr
    kept = [f"noop-executor{SUFFIX}", names["alive"], names["other_host"], names["new_no_pid"]]
    assert sorted(p.name for p in folder.iterdir()) == sorted(kept)
    assert sorted(os.listdir(tmp_path / "t")) == ["hm-install-new"]
    assert sorted(os.listdir(staging)) == sorted([f"{alive}.{host}-abcdefgh", f"{dead}.{other_host}-abcdefgh"])
