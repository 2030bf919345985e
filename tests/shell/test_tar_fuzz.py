"""A bounded run of the tar extractor's fuzz target (tests/c/tar_extract_fuzz.c).

``python tests/shell/tar_fuzz.py --runs N`` (or ``--libfuzzer``) fuzzes for longer.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tar_fuzz import C_TESTS, compile_with_shell_sources, run_standalone, write_seeds


def test_thousands_of_mutated_archives_break_no_invariant(tmp_path: Path) -> None:
    done = run_standalone(runs=2500, seed=1, work=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "5 seeds and 2500 mutated inputs, no invariant broken" in done.stdout


def test_the_fuzz_target_notices_a_write_outside_the_workspace(tmp_path: Path) -> None:
    exe = tmp_path / "tar_fuzz_self_test"
    compile_with_shell_sources(C_TESTS / "tar_extract_fuzz.c", exe, flags=["-DHM_FUZZ_SELF_TEST"])
    (seed,) = [p for p in write_seeds(tmp_path / "corpus") if p.name == "ustar.tar"]
    done = subprocess.run(
        [str(exe), "-runs=0", str(seed)],
        capture_output=True,
        text=True,
        env={"HM_TAR_FUZZ_DIR": str(tmp_path / "fuzz"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "INVARIANT BROKEN: something appeared in outside/" in done.stderr
    assert (tmp_path / "fuzz" / "last-input.tar").read_bytes() == seed.read_bytes()
