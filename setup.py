"""Builds Yizhan with the module guide (docs/modules.md) inside the package, for /help."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithGuide(build_py):
    """build_py that also copies docs/modules.md to yizhan/admin/modules.md."""

    def run(self) -> None:
        super().run()
        source = Path(__file__).parent / "docs" / "modules.md"
        target = Path(self.build_lib) / "yizhan" / "admin" / "modules.md"
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildWithGuide})
