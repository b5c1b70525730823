"""What ``import pytensor_blackjax`` loads: sampling needs, not the results side."""

import subprocess
import sys

import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax import _preload


def test_import_leaves_the_results_side_unloaded():
    code = (
        "import sys, pytensor_blackjax\n"
        "heavy = ('xarray', 'pandas', 'zarr', 'pymc', 'arviz_base')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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


def test_import_changes_no_jax_setting():
    code = (
        "import jax\n"
        "before = dict(jax.config.values)\n"
        "import pytensor_blackjax\n"
        "after = dict(jax.config.values)\n"
        "print(sorted(k for k in before if before[k] != after.get(k)), jax.config.read('jax_enable_x64'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False"
