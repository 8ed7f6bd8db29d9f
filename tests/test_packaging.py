"""A plain (non-editable) install carries the framework, rule sets and example sample with it."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    return next(out.glob("qi_engine-*.whl"))


def test_wheel_contains_code_and_bundled_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"engine/cli.py", "engine/__init__.py", "engine/_data/framework/hmip-qi-adult-2.0.yaml",
            "engine/_data/cases/north-west-2016/sample.yaml"} <= names
    assert any(n.startswith("engine/_data/cases/north-west-2016/cases/NW-") for n in names)
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"engine"}  # no top-level cli module to clash with other packages
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "qi = engine:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_qi_finds_bundled_data_from_any_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    sample = target / "engine" / "_data" / "cases" / "north-west-2016"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["framework", "show", "6.3"], ["validate", str(sample)]):
        result = subprocess.run([sys.executable, "-c", "import engine; engine.main()", *args], cwd=elsewhere,
                                capture_output=True, text=True, env={"PYTHONPATH": str(target)})
        assert result.returncode == 0, result.stderr
    assert not (target / "cli.py").exists() and (target / "engine" / "cli.py").is_file()
    # a trace names bundled files by logical name; qi rules show opens them from the installed copy
    shown = subprocess.run([sys.executable, "-c", "import engine; engine.main()", "rules", "show",
                            "cases/north-west-2016/cases/NW-014.yaml:27"], cwd=elsewhere,
                           capture_output=True, text=True, env={"PYTHONPATH": str(target)})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("  3.1.a:") and str(target / "engine" / "_data") in shown.stderr


def test_commands_that_compute_no_figure_do_not_import_scipy_or_statsmodels():
    """scipy and statsmodels cost over a second to import: loading the CLI leaves them out, and the
    first figure computed brings them in."""
    import subprocess
    import sys

    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import cli\n"
             "heavy = lambda: sorted(m for m in ('scipy.stats', 'statsmodels', 'pandas') if m in sys.modules)\n"
             "before = heavy()\n"
             "from engine.aggregate import statistics\n"
             "interval = statistics.wilson(3, 4, 0.95)\n"
             "print(before, heavy(), interval is not None)")
    found = subprocess.run([sys.executable, "-c", probe, str(ROOT)], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[] ['scipy.stats'] True"
