"""create_app: what it installs that importing the web modules does not."""

from __future__ import annotations

import subprocess
import sys


def test_template_globals_are_installed_by_create_app_not_by_an_import() -> None:
    code = (
        "import app.web.connectivity.overview\n"
        "from app.web.templating import templates\n"
        "assert 'aws_vantage' not in templates.env.globals, 'registered by an import'\n"
        "from app.main import create_app\n"
        "from app.settings import Settings\n"
        "create_app(Settings(_env_file=None, database_url='sqlite://'))\n"
        "assert 'aws_vantage' in templates.env.globals\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
