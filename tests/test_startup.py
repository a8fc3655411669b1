"""`mgz --help` must not pay for the heavy stack: the CLI imports what a command needs when it runs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("spacy", "nltk", "torch", "thinc", "fastapi", "uvicorn", "sklearn", "bertopic", "pdfplumber", "sqlalchemy")


def test_cli_module_imports_no_heavy_library():
    code = "import sys, pipeline.cli; print(' '.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_help_lists_the_commands_without_the_heavy_stack():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from pipeline.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0 and 'extract' in result.output and 'review' in result.output, result.output\n"
        "print(' '.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
