"""The repository keeps its promises: two README commands, CI runs the README's tests."""

import re
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
    assert "streamlit run app.py" in app and "requirements.txt" in app
    assert "pytest" in tests and "requirements-dev.txt" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = setup_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


def test_dev_requirements_include_runtime_requirements():
    dev = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in dev


def test_shipped_files_stay_small():
    for path in (ROOT / "weights").iterdir():
        assert path.stat().st_size < 30e6, path
