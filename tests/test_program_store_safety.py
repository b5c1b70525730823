"""The program store unpickles what it loads, so it loads nothing another user could have written: a
store directory or entry that is not the user's own or that others can write, and an entry without a
valid HMAC under the user's key, are refused with a warning, and the run samples the same draws."""

import os
import pickle
import stat

import numpy as np
import pytensor.tensor as pt
import pytest

import pytensor_blackjax as pbj
from pytensor_blackjax.run import _cache, _keys, _sealed, _stored
from pytensor_blackjax.run._sealed import ProgramStoreWarning

# these runs compare bits between runs, not posteriors: short runs, their diagnostics not checked
pytestmark = pytest.mark.filterwarnings("ignore::pytensor_blackjax.SamplingWarning")

ROOT_ONLY = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="giving a file to another user (os.chown) needs root",
)


def gaussian(mu):
    b = pbj.ModelBuilder(name="g")
    y = b.data("y", np.zeros(3))
    x = b.param("x")
    b.add_logp(-0.5 * pt.sum((y - x - mu) ** 2))
    return pbj.compile(b.build())


def draws(mu):
    """Draws of a freshly compiled model: its programs are looked up in the store again."""
    _keys._program.cache_clear()  # the chain-key program is kept per process
    tree = pbj.sample(gaussian(mu), draws=100, tune=100, chains=2, seed=5, progressbar=False)
    return np.asarray(tree["posterior"]["x"].values)


@pytest.fixture
def store(tmp_path, monkeypatch):
    folder = tmp_path / "a" / "b" / "programs"
    monkeypatch.setenv(_cache.ENV, str(folder))
    return folder


def refusals(seen):
    return sum(issubclass(w.category, ProgramStoreWarning) for w in seen)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_store_is_private_and_a_second_run_loads_every_entry(store):
    before = draws(1.5)
    assert mode(store) == 0o700  # created with its parents
    assert mode(store / _sealed.KEY_NAME) == 0o600 and len((store / _sealed.KEY_NAME).read_bytes()) == 32
    entries = sorted(store.glob("*.bin"))
    assert entries and all(mode(e) == 0o600 for e in entries)
    loaded, compiled = _stored.STATS["loaded"], _stored.STATS["compiled"]
    np.testing.assert_array_equal(draws(1.5), before)
    assert _stored.STATS["loaded"] - loaded == len(entries) and _stored.STATS["compiled"] == compiled


def test_an_entry_others_can_write_is_refused_and_replaced(store):
    before = draws(1.75)
    entries = sorted(store.glob("*.bin"))
    for e in entries:
        os.chmod(e, 0o666)
    loaded = _stored.STATS["loaded"]
    with pytest.warns(ProgramStoreWarning, match=r"has mode 0o666: group or others can write to it") as seen:
        again = draws(1.75)
    assert refusals(seen) == len(entries)
    assert _stored.STATS["loaded"] == loaded
    np.testing.assert_array_equal(again, before)
    assert all(mode(e) == 0o600 for e in entries)  # compiled again and stored again, privately
    np.testing.assert_array_equal(draws(1.75), before)  # no warning: the new entries are trusted
    assert _stored.STATS["loaded"] == loaded + len(entries)


class Payload:
    """A pickle that runs code when loaded: it creates a file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_an_entry_without_a_valid_hmac_is_never_unpickled(store, tmp_path):
    before = draws(2.0)
    entries = sorted(store.glob("*.bin"))
    ran = tmp_path / "the-pickle-ran"
    evil = pickle.dumps(Payload(ran))
    for i, e in enumerate(entries):  # a bare pickle, and one behind a forged header
        e.write_bytes(evil if i % 2 else b"PBJHMAC1" + bytes(32) + evil)
    with pytest.warns(ProgramStoreWarning, match=r"does not carry a valid HMAC") as seen:
        again = draws(2.0)
    assert not ran.exists()
    assert refusals(seen) == len(entries)
    np.testing.assert_array_equal(again, before)
    assert all(evil not in e.read_bytes() for e in entries)


def test_a_store_directory_others_can_write_is_not_used(store):
    store.mkdir(parents=True)
    os.chmod(store, 0o777)
    loaded, saved = _stored.STATS["loaded"], _stored.STATS["saved"]
    with pytest.warns(ProgramStoreWarning, match=rf"program store {store} has mode 0o777.*chmod 700 {store}"):
        x = draws(2.25)
    # the warning is given once; the run compiles everything and stores nothing
    assert not list(store.iterdir())
    assert _stored.STATS["loaded"] == loaded and _stored.STATS["saved"] == saved
    os.chmod(store, 0o700)  # the fix the warning names
    np.testing.assert_array_equal(draws(2.25), x)
    assert _stored.STATS["saved"] > saved


@ROOT_ONLY
def test_an_entry_owned_by_another_user_is_refused(store):
    before = draws(2.5)
    victim = sorted(store.glob("*.bin"))[0]
    os.chown(victim, 65534, 65534)
    with pytest.warns(ProgramStoreWarning, match=r"is owned by uid 65534, not by you \(uid 0\)"):
        again = draws(2.5)
    np.testing.assert_array_equal(again, before)
    assert victim.stat().st_uid == 0  # stored again, by this user


@ROOT_ONLY
def test_a_store_directory_owned_by_another_user_is_not_used(store):
    store.mkdir(parents=True, mode=0o700)
    os.chown(store, 65534, 65534)
    with pytest.warns(ProgramStoreWarning, match=rf"program store {store} is owned by uid 65534"):
        assert _sealed.open_vault(store) is None


@pytest.mark.parametrize("key_mode", [0o644, 0o620])
def test_a_key_others_can_read_or_write_switches_the_store_off(tmp_path, key_mode):
    assert _sealed.open_vault(tmp_path) is not None
    os.chmod(tmp_path / _sealed.KEY_NAME, key_mode)
    with pytest.warns(ProgramStoreWarning, match=rf"key {tmp_path / _sealed.KEY_NAME} has mode.*rm "):
        assert _sealed.open_vault(tmp_path) is None


@ROOT_ONLY
def test_a_key_owned_by_another_user_switches_the_store_off(tmp_path):
    assert _sealed.open_vault(tmp_path) is not None
    os.chown(tmp_path / _sealed.KEY_NAME, 65534, 65534)
    with pytest.warns(ProgramStoreWarning, match=r"key .* is owned by uid 65534"):
        assert _sealed.open_vault(tmp_path) is None


def test_entries_are_bound_to_their_key_file_and_name(tmp_path):
    vault = _sealed.open_vault(tmp_path)
    assert _sealed.open_vault(tmp_path) == vault  # one key, kept
    entry = tmp_path / "a.bin"
    assert _sealed.write_entry(vault, entry, b"payload")
    assert _sealed.read_entry(vault, entry) == b"payload"
    # a valid entry under another name is not that program
    (tmp_path / "b.bin").write_bytes(entry.read_bytes())
    os.chmod(tmp_path / "b.bin", 0o600)
    with pytest.warns(ProgramStoreWarning, match="b.bin: it does not carry a valid HMAC"):
        assert _sealed.read_entry(vault, tmp_path / "b.bin") is None
    assert not (tmp_path / "b.bin").exists()
    # another user's key (another store) does not vouch for it either
    other = _sealed.open_vault(tmp_path / "other")
    with pytest.warns(ProgramStoreWarning, match="a.bin: it does not carry a valid HMAC"):
        assert _sealed.read_entry(other, entry) is None
    # a symlink is not followed
    target = tmp_path / "c.bin"
    assert _sealed.write_entry(vault, target, b"payload")
    (tmp_path / "d.bin").symlink_to(target)
    with pytest.warns(ProgramStoreWarning, match="d.bin: it cannot be opened safely"):
        assert _sealed.read_entry(vault, tmp_path / "d.bin") is None


def test_processes_starting_together_agree_on_one_key(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        vaults = list(pool.map(_sealed.open_vault, [tmp_path] * 32))
    assert len({v.key for v in vaults}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [_sealed.KEY_NAME]  # no temporary file left


def test_a_store_directory_others_may_only_read_is_used(tmp_path):
    os.chmod(tmp_path, 0o755)  # as an earlier release created it: entries and key are 0600 anyway
    vault = _sealed.open_vault(tmp_path)
    assert vault is not None
    assert _sealed.write_entry(vault, tmp_path / "a.bin", b"payload")
    assert _sealed.read_entry(vault, tmp_path / "a.bin") == b"payload"
