"""The optional C accelerator and the prebuilt start-up state; everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds, and the engine uses the
ahocorasick-rs backend instead (same findings, slower; see compliance/matcher.py).

After the extension, the build writes the start-up state of the default rule packs into the
package's ``prebuilt/`` directory (``python -m livestream_compliance.prebuild``), so that the first
start of an installed package, even in a fresh container, reads it instead of building (~1 s
instead of ~5 s). It needs the packages the build of the state imports (pydantic, jieba, opencc, and
ahocorasick-rs where the extension was not compiled:
``[build-system] requires``); if it fails for any reason the install goes on without it, and the
first start builds the state as before.
"""

import os
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PACKAGES = {"livestream_compliance": "compliance", "livestream_compliance_rules": "rules"}


class build_ext_and_state(build_ext):
    def run(self):
        super().run()
        self.prebuild_state()

    def prebuild_state(self):
        if os.environ.get("LSC_NO_PREBUILD"):
            self.announce("prebuild: skipped (LSC_NO_PREBUILD is set)", level=2)
            return
        build_py = self.get_finalized_command("build_py")
        if self.inplace or getattr(self, "editable_mode", False):
            dirs = {name: os.path.abspath(build_py.get_package_dir(name)) for name in PACKAGES}
        else:
            dirs = {name: os.path.abspath(os.path.join(self.build_lib, name)) for name in PACKAGES}
        if not all(os.path.isdir(d) for d in dirs.values()):
            self.warn(f"prebuild: skipped (package directories not found: {dirs})")
            return
        out = os.path.join(dirs["livestream_compliance"], "prebuilt")
        # the packages under their import names, whatever their directories are called here
        with tempfile.TemporaryDirectory(prefix="lsc-build-") as root:
            for name, d in dirs.items():
                os.symlink(d, os.path.join(root, name))
            env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
                       PYTHONDONTWRITEBYTECODE="1")
            proc = subprocess.run([sys.executable, "-m", "livestream_compliance.prebuild", out], env=env,
                                  capture_output=True, text=True, cwd=root)
        if proc.returncode != 0:
            self.warn(f"prebuild: the install goes on without a prebuilt state; the first start builds it "
                      f"(~5 s): {(proc.stderr or proc.stdout).strip()[-2000:]}")
            return
        self.announce(proc.stdout.strip(), level=2)


setup(
    cmdclass={"build_ext": build_ext_and_state},
    ext_modules=[
        Extension(
            "livestream_compliance._native",
            ["compliance/_native.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ],
)
