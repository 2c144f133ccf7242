"""Build hook: ship the top-level policy-packs/ folder inside the package.

Everything else about the build lives in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithPacks(build_py):
    """Copy policy-packs/ to checker/policy-packs/ in the built package."""

    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "policy-packs"
        if source.is_dir():
            target = Path(self.build_lib, "checker", "policy-packs")
            shutil.copytree(source, target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithPacks})
