"""What the README tells a newcomer to type works as written."""

from __future__ import annotations

import re
from pathlib import Path

from config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_runs_manage_py_in_the_projects_environment() -> None:
    # A bare `python manage.py` fails outside the venv (No module named 'sqlmodel').
    commands = [c.lstrip("`") for c in re.findall(r"(\S*python\S*) manage\.py", README)]
    assert commands, "the README shows the operator commands"
    assert set(commands) == {".venv/bin/python"}, commands


def test_every_setting_is_in_the_readme_table_and_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        env = name.upper()
        assert f"`{env}`" in README, f"{env} missing from the README settings table"
        assert re.search(rf"^{env}=", example, re.MULTILINE), f"{env} missing from .env.example"
