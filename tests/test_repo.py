"""The repository keeps its promises: two README commands, CI runs the README's tests."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Setup: two commands.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README must have a 'Setup: two commands' section with a bash block"
    return [line for line in block.group(1).splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_readme_has_exactly_two_setup_commands():
    app, tests = setup_commands()
    for command in (app, tests):  # a virtual environment, so Debian's own Python works too
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install "), command
    assert "-r requirements.txt" in app and app.endswith(".venv/bin/streamlit run app.py")
    assert '-e ".[dev]"' in tests and tests.endswith(".venv/bin/python -m pytest")


def test_ci_runs_the_readme_test_command():
    _, tests = setup_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


def test_dependencies_are_declared_once_in_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert requirements == ["-e ."]
    assert not (ROOT / "requirements-dev.txt").exists()
    runtime = {re.split(r"[<>=\[ ]", d)[0] for d in project["dependencies"]}
    assert {"numpy", "tensorflow", "streamlit", "astropy"} <= runtime
    extras = project["optional-dependencies"]
    assert "lensviz[tune]" in extras["dev"]  # the tests cover the tune command
    assert project["scripts"]["lensviz"] == "lensviz.cli:main"


def test_shipped_files_stay_small():
    for path in (ROOT / "weights").iterdir():
        assert path.stat().st_size < 30e6, path
