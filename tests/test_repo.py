"""The repository keeps its promises: two README commands, CI runs the README's tests."""

import functools
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Setup: two commands.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README must have a 'Setup: two commands' section with a bash block"
    return [
        line
        for line in block.group(1).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


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
    requirements = [
        line
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
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


_SKIP_DIRS = {
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "runs",
    "data",
    "artifacts",
    "tmp",
    "build",
    "dist",
}
# Built from pieces, so that this file does not match itself.
_OUTSIDE = re.compile(
    "|".join(
        [
            re.escape("../" + "shared"),
            re.escape("REFERENCE" + ".md"),
            r"(?<![\w.~])/(?:work|home|root|Users|mnt)/\w",  # absolute paths on someone's machine
        ]
    )
)


_BINARY = {".keras", ".npz", ".npy", ".h5", ".hdf5", ".png", ".jpg", ".ico", ".pyc"}


@functools.cache
def repository_text_files() -> tuple[tuple[str, str], ...]:
    """``(path relative to the repository, text)`` of every text file that ships."""
    out = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(folder, name)
            if path.suffix in _BINARY:
                continue
            try:
                out.append((path.relative_to(ROOT).as_posix(), path.read_text()))
            except UnicodeDecodeError:
                continue
    return tuple(out)


def test_no_file_points_outside_the_repository():
    hits = [
        f"{rel}:{n}: {line.strip()}"
        for rel, text in repository_text_files()
        for n, line in enumerate(text.splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert hits == [], "\n".join(hits)


def test_the_reference_cites_the_report_once_and_numbers_its_sections():
    text = (ROOT / "docs" / "reference.md").read_text()
    assert text.count("Reporte solución equipo Barrienlens") == 1
    assert "Urcelay" in text and "AstroDatatón 2024" in text
    headings = re.findall(r"^## (\d+)\. ", text, re.M)
    assert headings == [str(i) for i in range(1, len(headings) + 1)]
    cited = {
        int(n)
        for rel, body in repository_text_files()
        for n in re.findall(r"docs/reference\.md §(\d+)", body)
    }
    assert cited and cited <= set(range(1, len(headings) + 1))


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff_lint_and_format(command):
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
