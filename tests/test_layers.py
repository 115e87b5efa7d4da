"""The domains import in one order (the [tool.importlinter] contract in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_no_lower_layer_imports_a_higher_one():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workers_and_the_cli_do_not_import_each_other_in_a_circle():
    """create_app imports the CLI, and with it the worker command: that must not import app back."""
    import grimp

    graph = grimp.build_graph("app", "mailers", "workers", cache_dir=None)
    assert not graph.chain_exists(importer="workers.cli", imported="app", as_packages=False)
