"""The layers hold: the numpy package never loads TensorFlow, Keras or Streamlit.

``lensviz/`` is numpy; TensorFlow and Keras are imported only under ``lensviz/nn/`` and by
the model and scoring commands of the CLI; Streamlit only by the app (``app.py``, ``ui/``).
Imports sit at the top of each file, except the optional Keras Tuner extra.
"""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import lensviz

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lensviz"

#: Modules that import TensorFlow by design: the nn layer and the CLI commands using it.
TF_MODULES = ("lensviz.nn", "lensviz.cli.evaluate", "lensviz.cli.model")
#: Optional extras that may be imported inside a function, where they are used.
OPTIONAL_EXTRAS = ("keras_tuner", "tensorboard")
HEAVY = ("tensorflow", "keras", "streamlit")


def numpy_modules() -> list[str]:
    names = ["lensviz"]
    for info in pkgutil.walk_packages(lensviz.__path__, "lensviz."):
        if info.name.startswith(TF_MODULES) or info.name == "lensviz.__main__":
            continue
        names.append(info.name)
    return names


def imported_names(path: Path) -> list[tuple[str, bool]]:
    """``(top-level module name, inside a function?)`` for every import of a file."""
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((a.name.split(".")[0], in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0:
                out.append((child.module.split(".")[0], in_function))
            visit(child, inside)

    visit(ast.parse(path.read_text()), False)
    return out


def test_the_numpy_modules_are_found():
    modules = numpy_modules()
    for name in (
        "lensviz.inversion",
        "lensviz.metrics",
        "lensviz.simulate",
        "lensviz.cli",
        "lensviz.cli.data",
        "lensviz.plots.maps",
        "lensviz.evaluation",
    ):
        assert name in modules
    assert not any(m.startswith("lensviz.nn") for m in modules)


def test_import_lensviz_never_loads_tensorflow_keras_or_streamlit():
    modules = numpy_modules()
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_the_data_commands_do_not_load_tensorflow():
    code = (
        "import sys\n"
        "from lensviz.cli import COMMANDS\n"
        "for c in COMMANDS:\n"
        "    if c.name in ('convert', 'simulate', 'conventions'):\n"
        "        c.resolve()\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


def test_only_the_nn_layer_imports_tensorflow_and_nothing_imports_streamlit():
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        names = {name for name, _ in imported_names(path)}
        assert "streamlit" not in names, f"{path} imports streamlit"
        if not module.startswith(TF_MODULES):
            assert not names & {"tensorflow", "keras"}, f"{path} imports TensorFlow/Keras"


def test_imports_sit_at_the_top_except_optional_extras():
    for folder in (PACKAGE, ROOT / "benchmarks"):
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            inside = [
                name
                for name, in_function in imported_names(path)
                if in_function and name not in OPTIONAL_EXTRAS
            ]
            assert inside == [], f"{rel} imports {inside} inside functions"
