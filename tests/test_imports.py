"""What ``import pytensor_blackjax`` loads: sampling needs, not the results side."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax import _preload


def _python(code: str, env: dict | None = None) -> str:
    """What a fresh interpreter running ``code`` prints (stripped)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return out.stdout.strip()


def test_import_leaves_the_results_side_unloaded():
    code = (
        "import sys, pytensor_blackjax\n"
        "heavy = ('xarray', 'pandas', 'zarr', 'pymc', 'arviz_base')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    assert _python(code) == "[]"


def test_the_command_line_leaves_the_results_side_to_the_background_import():
    # a command that samples imports xarray while the run compiles and samples, not before it starts
    code = (
        "import sys, pytensor_blackjax.cli\n"
        "heavy = ('xarray', 'pandas', 'zarr', 'arviz_stats', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    assert _python(code) == "[]"


def test_steps_asked_for_run_in_the_background_import_after_the_results_side():
    code = (
        "import sys\n"
        "from pytensor_blackjax import _preload\n"
        "seen = []\n"
        "_preload.also(lambda: seen.append('xarray' in sys.modules), lambda: seen.append(2))\n"
        "_preload.also(lambda: 1 / 0, lambda: seen.append(3))\n"
        "_preload.preload()\n"
        "_preload.results()\n"
        "print(seen, _preload._ALSO == [])"
    )
    # a failing step is passed over quietly (where the caller uses what it loads, it fails in the open)
    assert _python(code) == "[True, 2, 3] True"


def test_lazy_names_resolve():
    from pytensor_blackjax import SamplingWarning, resume

    assert issubclass(SamplingWarning, UserWarning)
    assert callable(resume) and resume is pbj.resume
    assert callable(pbj.examples.rat_tumors)
    assert callable(pbj.distributed.initialize)
    assert set(pbj.__all__) <= set(dir(pbj))


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        pbj.no_such_name  # noqa: B018


def test_preload_then_results_gives_the_module():
    _preload.preload()
    assert _preload.results().__name__ == _preload.RESULTS


def test_preload_waits_for_its_release():
    # the import is GIL-bound: it starts when the run's programs no longer need the GIL to trace
    code = (
        "import sys, time\n"
        "from pytensor_blackjax import _preload\n"
        "_preload.preload()\n"
        "time.sleep(0.5)\n"
        "before = 'xarray' in sys.modules\n"
        "_preload.release()\n"
        "_preload._THREAD.join()\n"
        "print(before, 'xarray' in sys.modules)"
    )
    assert _python(code) == "False True"


def _gate_open_at_results(call: str, env: dict | None = None) -> str:
    """What a fresh interpreter prints after ``call``: for each ``results()`` of the run, whether the
    results side's import had been released by then."""
    code = (
        "import pytensor_blackjax as pbj, pytensor_blackjax._sample as s\n"
        "from pytensor_blackjax import _preload\n"
        "seen = []\n"
        "def results():\n"
        "    seen.append(_preload._GO.is_set())\n"
        "    return _preload.results()\n"
        "s.results = results\n"
        f"{call}\n"
        "print(seen)"
    )
    return _python(code, env).splitlines()[-1]


def test_a_compiling_run_releases_the_preload_before_its_results():
    # XLA compiles without the GIL and leaves cores free: the results side imports meanwhile
    call = "pbj.sample(pbj.examples.rat_tumors(), draws=20, tune=20, chains=2, seed=1, progressbar=False)"
    assert _gate_open_at_results(call, {**os.environ, "PBJ_COMPILATION_CACHE": "off"}) == "[True]"


def test_a_run_from_the_store_releases_the_preload_before_its_results(tmp_path):
    # programs loaded, a chain on every core: the import runs beside the chains, at the lowest priority
    call = "pbj.sample(pbj.examples.rat_tumors(), draws=20, tune=20, chains=2, seed=1, progressbar=False)"
    env = {**os.environ, "PBJ_COMPILATION_CACHE": str(tmp_path)}
    _gate_open_at_results(call, env)  # fills the store
    assert _gate_open_at_results(call, env) == "[True]"


def test_the_import_yields_the_cpu_and_the_gil_and_restores_the_switch_interval(tmp_path):
    # a stand-in for the results side records the importing thread's nice value and switch interval
    (tmp_path / "probe.py").write_text(
        "import os, sys, threading\n"
        "seen = (os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), sys.getswitchinterval())\n"
    )
    code = (
        "import json, os, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from pytensor_blackjax import _preload\n"
        "_preload.RESULTS = 'probe'\n"
        "before = (os.getpriority(os.PRIO_PROCESS, 0), sys.getswitchinterval())\n"
        "_preload.preload(); _preload.release(); _preload._THREAD.join()\n"
        "import probe\n"
        "after = (os.getpriority(os.PRIO_PROCESS, 0), sys.getswitchinterval())\n"
        "print(json.dumps([before, probe.seen, after]))"
    )
    before, seen, after = json.loads(_python(code))
    assert after == before  # the main thread's priority and Python's switch interval are as they were
    assert seen[1] == pytest.approx(min(before[1], _preload.SWITCH_INTERVAL))
    if sys.platform.startswith("linux"):  # a thread's own nice value; elsewhere it is left alone
        assert seen[0] == max(before[0], _preload.LOWEST_PRIORITY)


def test_extending_a_run_releases_the_preload_before_its_results(tmp_path):
    # a run continued from a stored state compiles nothing ahead: the layout opens the gate as it restores
    store = tmp_path / "run.zarr"
    first = (
        "import pytensor_blackjax as pbj\n"
        f"pbj.sample(pbj.examples.rat_tumors(), draws=20, tune=20, chains=2, seed=1, store={str(store)!r},"
        " progressbar=False)\n"
    )
    _python(first)
    assert _gate_open_at_results(f"pbj.extend({str(store)!r}, draws=10, progressbar=False)") == "[True]"


def test_import_changes_no_jax_setting():
    code = (
        "import jax\n"
        "before = dict(jax.config.values)\n"
        "import pytensor_blackjax\n"
        "after = dict(jax.config.values)\n"
        "print(sorted(k for k in before if before[k] != after.get(k)), jax.config.read('jax_enable_x64'))"
    )
    assert _python(code) == "[] False"


def test_a_result_leaves_dask_unloaded():
    # xarray's own path checks every coordinate array for dask, importing it when it is installed
    code = (
        "import sys, numpy as np\n"
        "from pytensor_blackjax.results import make_datatree\n"
        "make_datatree({'posterior': {'x': np.zeros((2, 3, 2))}}, dims={'x': ['g']},"
        " coords={'g': ['a', 'b']}, observed={'y': np.ones(2)})\n"
        "print('dask' in sys.modules)"
    )
    assert _python(code) == "False"


@pytest.mark.parametrize(
    "values",
    [
        [1.5, 2.5, 4.0],
        ["a", "bb", "c"],
        np.array([3, 1, 2], np.int32),
        [True, False, True],
        np.array(["2020-01-01", "2020-02-01", "2021-01-01"], "datetime64[ns]"),
        [1, "b", 2.5],
    ],
    ids=["float", "str", "int32", "bool", "datetime", "object"],
)
def test_result_coordinates_are_those_xarray_makes(values):
    import xarray as xr

    from pytensor_blackjax.results import make_datatree

    draws = np.random.default_rng(0).normal(size=(2, 4, 3))
    tree = make_datatree({"posterior": {"x": draws}}, dims={"x": ["g"]}, coords={"g": values})
    plain = xr.Dataset(
        {"x": (("chain", "draw", "g"), draws)},
        coords={"chain": np.arange(2), "draw": np.arange(4), "g": values},
    )
    made = tree["posterior"].to_dataset()
    assert made.drop_attrs().identical(plain)
    for name in plain.coords:
        assert made[name].dtype == plain[name].dtype
        assert made.indexes[name].equals(plain.indexes[name])
        assert made.indexes[name].dtype == plain.indexes[name].dtype
