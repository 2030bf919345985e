"""setuptools glue: build the cffi bridge (``cffi_modules``) and compile the bundled
plugins into ``hm/bundled_plugins`` and the ``hm-worker`` executable into
``hm/_native`` as part of ``build_ext``, so ``pip install .``
(and an editable install) needs nothing but a C compiler."""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext


class build_ext_with_plugins(build_ext):
    def run(self) -> None:
        super().run()
        # Loaded by path: `import build` could pick up PyPA's `build` package instead.
        spec = importlib.util.spec_from_file_location("hm_build", Path(__file__).resolve().parent / "build.py")
        hm_build = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(hm_build)
        if self.inplace or self.editable_mode:
            out = hm_build.BUNDLED_OUT
            native = hm_build.NATIVE
        else:
            out = Path(self.build_lib) / "hm" / "bundled_plugins"
            native = Path(self.build_lib) / "hm" / "_native"
        hm_build.build_worker(native)
        hm_build.build_bundled(out)


setup(
    cffi_modules=["build.py:ffibuilder"],
    cmdclass={"build_ext": build_ext_with_plugins},
)
