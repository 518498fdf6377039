"""The build step pyproject.toml cannot say by itself: the shipped rules.yaml and templates/
stay at the repository's root (their one copy) and are copied into the wheel as
notifier/shipped/, where notifier.config.shipped finds them in an installed package."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("rules.yaml", "templates")


class BuildWithShipped(build_py):
    """build_py, then rules.yaml and templates/ copied into the built package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "notifier" / "shipped"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in SHIPPED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns(".*", "__pycache__"))
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithShipped})
