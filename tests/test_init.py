"""Start anywhere: `notifier init` writes a deployment's starter files and never overwrites,
and a wheel installed away from any checkout runs `notifier init` and `notifier demo`."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from notifier.cli import app
from notifier.config.settings import Settings, load_settings
from notifier.config.validate import validate
from notifier.tools.starter import config_text

ROOT = Path(__file__).resolve().parent.parent


def test_init_writes_rules_templates_and_a_commented_config(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    result = CliRunner().invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "rules.yaml").read_text() == (ROOT / "rules.yaml").read_text()
    assert (folder / "templates" / "order_confirmation" / "zh-TW.html").is_file()
    config = (folder / "notifier.toml").read_text(encoding="utf-8")
    assert "# database_url = " in config and "# poll_interval = " in config
    assert oct((folder / "notifier.toml").stat().st_mode & 0o777) == "0o600", "it holds the secret key"
    # What init wrote is what the loader reads, and what check accepts.
    settings = load_settings(config_file=folder / "notifier.toml", environ={})
    assert settings.secret_key is not None and len(settings.secret_key.reveal()) == 64
    assert set(tomllib.loads(config)["notifier"]) == {"secret_key"}
    assert not validate(folder / "rules.yaml", folder / "templates").problems
    assert f"cd {folder} && notifier check" in result.output


def test_the_config_names_every_setting_and_its_defaults_load_as_defaults(tmp_path: Path) -> None:
    config = config_text("k" * 64)
    named = {line.removeprefix("# ").split(" = ")[0] for line in config.splitlines() if " = " in line}
    assert named == {item.name for item in fields(Settings)}
    # Uncommented, each setting that has a default reads back as that default.
    defaults = Settings()
    for line in config.splitlines():
        if line.startswith("# ") and " = " in line:
            name = line.removeprefix("# ").split(" = ")[0]
            if getattr(defaults, name) is not None:
                path = tmp_path / "notifier.toml"
                path.write_text(f"[notifier]\n{line.removeprefix('# ')}\n", encoding="utf-8")
                read = load_settings(config_file=path, environ={})
                assert getattr(read, name) == getattr(defaults, name), line


def test_init_refuses_to_overwrite_and_says_which(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("mine\n")
    (tmp_path / "notifier.toml").write_text("# mine\n")
    result = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "nothing written" in result.output
    assert str(tmp_path / "rules.yaml") in result.output and str(tmp_path / "notifier.toml") in result.output
    assert (tmp_path / "rules.yaml").read_text() == "mine\n" and not (tmp_path / "templates").exists()


def test_the_shipped_files_have_one_copy_in_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "notifier/shipped"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert tracked.stdout == "" and not (ROOT / "notifier" / "shipped").exists()


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_runs_init_and_demo_in_an_empty_folder(tmp_path: Path) -> None:
    """The wheel is built from this checkout and installed, without its dependencies, into a new
    venv; those come from this interpreter's site-packages through a .pth line (offline, and the
    editable install of notifier there is not picked up: a .pth line adds a folder, it does not
    run that folder's .pth files)."""
    wheels, venv, empty = tmp_path / "wheels", tmp_path / "venv", tmp_path / "empty"
    empty.mkdir()
    pip = [sys.executable, "-m", "pip"]
    # Nothing of this checkout on the path: pip would take it for notifier already installed.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFIER_", "PYTHONPATH"))}
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("notifier-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [*pip, "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "_shared_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    notifier = venv / "bin" / "notifier"

    def sh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=empty, env=env, capture_output=True, text=True, timeout=180)

    where = sh(str(python), "-c", "import notifier; print(notifier.__file__)")
    assert where.stdout.startswith(site), where.stdout + where.stderr

    started = sh(str(notifier), "init")
    assert started.returncode == 0 and "Traceback" not in started.stdout + started.stderr, started.stderr
    assert (empty / "rules.yaml").is_file() and (empty / "templates" / "_layout.html").is_file()

    demo = sh(str(notifier), "demo")
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0 and "Traceback" not in output, output
    assert "emails caught" in output and list((empty / "demo-out" / "mail").glob("*.eml"))
    [suggested] = [line.removeprefix("try: ") for line in output.splitlines() if line.startswith("try: ")]
    again = sh(*shlex.split(suggested))
    assert again.returncode == 0 and "1042" in again.stdout, again.stdout + again.stderr
