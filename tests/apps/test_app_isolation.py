"""The core package does not depend on the MONAI Label app (DESIGN.md section 1)."""

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "monai_fewshot"


def test_core_package_imports_without_monailabel():
    code = "import sys, monai_fewshot.apps, monai_fewshot.inferers, monai_fewshot.cli; assert 'monailabel' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


def test_nothing_outside_apps_imports_apps():
    pattern = re.compile(r"^\s*(from|import)\s+monai_fewshot\.apps", re.MULTILINE)
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "apps" not in path.relative_to(PACKAGE).parts and pattern.search(path.read_text())
    ]
    assert offenders == []
