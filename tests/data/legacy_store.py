"""Writes ``legacy_store_v1.tar.gz``: two small stores in the format written before stores kept their
state as arrays plus JSON (chain state and settings were pickles then). Kept as a fixture so that stores
written by that release still resume and read (tests/test_store_legacy.py). Run once; never rewritten."""

from __future__ import annotations

import os
import tarfile
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ARCHIVE = os.path.join(HERE, "legacy_store_v1.tar.gz")
SEED, CHAINS, TUNE, DRAWS, CHUNK = 21, 2, 100, 60, 20


def model():
    import pytensor.tensor as pt

    import pytensor_blackjax as pbj

    m = pbj.ModelBuilder()
    x = m.param("x", shape=(2,))
    s = m.param("s", transform="positive")
    m.add_logp(-0.5 * pt.sum((x - 1.0) ** 2) - s + 2.0 * pt.log(s))
    return m.build()


def settings():
    return dict(draws=DRAWS, tune=TUNE, chains=CHAINS, seed=SEED, chunk_size=CHUNK, progressbar=False)


if __name__ == "__main__":
    import pytensor_blackjax as pbj
    from pytensor_blackjax.store._sink import StoreSink

    work = tempfile.mkdtemp()
    pbj.sample(model(), store=os.path.join(work, "complete.zarr"), **settings())

    class Crash(Exception):
        pass

    original = StoreSink._commit_state

    def crash_at_40(self, carry, *, num_draws, **kw):
        if num_draws == 40:
            raise Crash
        return original(self, carry, num_draws=num_draws, **kw)

    StoreSink._commit_state = crash_at_40
    try:
        pbj.sample(model(), store=os.path.join(work, "interrupted.zarr"), **settings())
    except Crash:
        pass
    StoreSink._commit_state = original
    ref = pbj.sample(model(), **settings())
    np.save(os.path.join(work, "reference_x.npy"), np.asarray(ref["posterior"]["x"].values))
    with tarfile.open(ARCHIVE, "w:gz") as tar:
        for name in ("complete.zarr", "interrupted.zarr", "reference_x.npy"):
            tar.add(os.path.join(work, name), arcname=name)
    print("wrote", ARCHIVE)
