"""Compile src/example.c into hm_example_plugin/lib/ while building the wheel."""

import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def include_dir() -> str:
    try:  # the SDK headers ship with hm
        import hm_plugin_sdk

        return str(hm_plugin_sdk.INCLUDE_DIR)
    except ImportError:  # building from a checkout of the hm repository
        return str(HERE.parent.parent / "hm_plugin_sdk" / "include")


class build_py_with_plugin(build_py):
    def run(self) -> None:
        super().run()
        suffix = {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
        out = Path(self.build_lib) / "hm_example_plugin" / "lib" / f"example{suffix}"
        out.parent.mkdir(parents=True, exist_ok=True)
        cc = (sysconfig.get_config_var("CC") or "cc").split()
        subprocess.run(
            [
                *cc,
                "-std=c11",
                "-O2",
                "-fPIC",
                "-shared",
                "-fvisibility=hidden",
                f"-I{include_dir()}",
                str(HERE / "src" / "example.c"),
                "-o",
                str(out),
            ],
            check=True,
        )


setup(cmdclass={"build_py": build_py_with_plugin})
