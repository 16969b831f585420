"""``pip install .`` builds a clean wheel: no packaging warnings, the templates inside.

The wheel is built from a copy of this checkout's files (tracked and
untracked, not ignored ones) with the build requirements of pyproject.toml
taken from the test environment (``--no-build-isolation``; pip checks they
are satisfied). ``PIP_CONFIG_FILE=/dev/null`` keeps a machine's own pip
configuration (and the notes it prints) out of the count.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def checkout_copy(dest: Path) -> Path:
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, names):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_the_wheel_builds_without_warnings_and_carries_the_templates(tmp_path: Path) -> None:
    src, out = checkout_copy(tmp_path / "src"), tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                           "--check-build-dependencies", "-w", str(out)],
                          cwd=src, env={**os.environ, "PIP_CONFIG_FILE": os.devnull}, capture_output=True,
                          text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    warnings = [line for line in output.splitlines() if "warn" in line.lower()]
    assert not warnings, "the build warned:\n" + output
    (wheel,) = out.glob("lpdeploy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted(p.name for p in (ROOT / "lpdeploy" / "web" / "templates").iterdir() if p.suffix == ".html")
    assert templates, "no templates in the checkout"
    missing = [t for t in templates if f"lpdeploy/web/templates/{t}" not in names]
    assert not missing, f"templates missing from the wheel: {missing}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "lpdeploy = lpdeploy.tools.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
