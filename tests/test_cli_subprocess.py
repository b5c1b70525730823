"""The installed ``pytensor-blackjax`` script as a user runs it, and its report in a real browser."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent / "pytensor-blackjax"
CHROMIUM = Path("/usr/bin/chromium")

MODEL_FILE = """
import numpy as np
import pytensor.tensor as pt
import pytensor_blackjax as pbj

m = pbj.ModelBuilder(name="shifted_normal")
mu = m.param("mu")
sd = m.param("sd", transform="positive")
y = m.data("y", np.array([1.2, 0.4, 2.2, 1.9, 0.8, 1.4]), observed=True)
m.add_logp(-0.5 * pt.sum(((y - mu) / sd) ** 2) - 6 * pt.log(sd) - sd)
model = m.build()
"""

pytestmark = pytest.mark.skipif(not BIN.exists(), reason=f"the script is not installed at {BIN}")


def cli(*args, cwd=None):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("cli")
    (work / "my_model.py").write_text(MODEL_FILE)
    result = cli(
        "run",
        "my_model.py",
        "--draws",
        300,
        "--tune",
        300,
        "--chains",
        2,
        "--seed",
        1,
        "--out",
        "run_out",
        cwd=work,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return work, result


def test_missing_model_file_is_one_clear_line(tmp_path):
    result = cli("run", "no_such_model.py", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: model file 'no_such_model.py' does not exist")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_run_then_summary(workdir):
    work, run = workdir
    # Help, usage errors and every command are covered in-process (test_cli.py); here, the real script.
    assert "mu" in run.stdout and "r_hat" in run.stdout
    assert "sampling" in run.stdout + run.stderr  # the progress bar's last state
    for name in ("results.zarr", "summary.csv", "trace.png", "report.html"):
        assert (work / "run_out" / name).exists()
    summary = cli("summary", "run_out/results.zarr", cwd=work)
    assert summary.returncode == 0 and "mu" in summary.stdout and "sd" in summary.stdout


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium) to render the report",
)
def test_report_renders_in_headless_chromium(workdir, tmp_path):
    import matplotlib.image

    report = workdir[0] / "run_out" / "report.html"
    shot = tmp_path / "report.png"
    # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,4000",
        f"--screenshot={shot}",
        report.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert shot.exists(), result.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1280)
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    coloured = np.count_nonzero(spread > 0.3)  # chain lines and densities in the figures
    dark = np.count_nonzero(pixels.max(axis=2) < 0.3)  # text of the tables and headings
    assert coloured > 5_000, coloured
    assert dark > 5_000, dark
