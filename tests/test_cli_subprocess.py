"""The installed ``pytensor-blackjax`` script as a user runs it, and its report in a real browser."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tool

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


def test_report_renders_in_headless_chromium(workdir, tmp_path):
    import matplotlib.image

    # a skip on a developer's machine without it; a failure in CI, where .ci/run installs it
    require_tool(CHROMIUM, "rendering the report", "apt-get install -y chromium")

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


def _committed(store):
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"].get("num_draws_completed", 0))
    except (OSError, ValueError, KeyError):
        return 0


def test_run_store_killed_then_resume_gives_the_uninterrupted_draws(tmp_path):
    import xarray as xr

    import pytensor_blackjax as pbj

    (tmp_path / "my_model.py").write_text(MODEL_FILE)
    settings = dict(draws=4000, tune=300, chains=2, seed=9)
    options = [f"--{k}={v}" for k, v in settings.items()]
    store = tmp_path / "run.zarr"
    command = [str(BIN), "run", "my_model.py", *options, "--store", "run.zarr", "--no-progress"]
    with open(tmp_path / "run.err", "wb") as err:
        proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and _committed(store) < 100:
        time.sleep(0.02)
    assert proc.poll() is None, (
        "the run ended before it could be killed: " + (tmp_path / "run.err").read_text()
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < _committed(store) < settings["draws"]
    resumed = cli("resume", "run.zarr", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "mu" in resumed.stdout and "r_hat" in resumed.stdout
    namespace: dict = {}
    exec(MODEL_FILE, namespace)
    reference = pbj.sample(namespace["model"], progressbar=False, **settings)
    stored = xr.open_datatree(str(store), engine="zarr")
    assert stored.attrs["status"] == "complete"
    for group in ("posterior", "sample_stats"):
        for name in reference[group].data_vars:
            np.testing.assert_array_equal(
                stored[group][name].values, reference[group][name].values, err_msg=f"{group}/{name}"
            )
