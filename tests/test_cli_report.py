"""Report and figures on synthetic results: readable subsets of large posteriors, diagnostics in words."""

import struct

import numpy as np
import pytest

from pytensor_blackjax.cli._plots import draw, select
from pytensor_blackjax.cli._report import build_report, checks
from pytensor_blackjax.results import RHAT_MAX, diagnose, diagnostics, make_datatree

CHAINS, DRAWS, GROUPS = 4, 200, 71


def fake_result(*, divergences=0, stuck_chain=False, seed=0, draws=DRAWS):
    rng = np.random.default_rng(seed)
    shape = (CHAINS, draws)
    alpha = rng.normal(2.0, 0.5, shape)
    if stuck_chain:
        alpha[0] += 3.0
    diverging = np.zeros(shape, dtype=bool)
    diverging.flat[:divergences] = True
    groups = {
        "posterior": {
            "alpha": alpha,
            "beta": rng.normal(10, 2, shape),
            "theta": rng.beta(2, 20, (*shape, GROUPS)),
        },
        "sample_stats": {
            "diverging": diverging,
            "energy": rng.normal(100, 5, shape),
            "tree_depth": np.full(shape, 3),
            "reached_max_treedepth": np.zeros(shape, dtype=bool),
        },
    }
    return make_datatree(
        groups,
        dims={"theta": ("group",)},
        coords={"group": list(range(GROUPS))},
        attrs={"model": "fake_rats", "sampler": "nuts", "draws": draws, "chains": CHAINS},
    )


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize(("kind", "kept"), [("trace", 5), ("rank", 3), ("pair", 3), ("forest", 20)])
def test_large_vectors_are_cut_to_a_readable_subset(kind, kept):
    posterior = fake_result()["posterior"].to_dataset()
    subset, note = select(posterior, kind)
    assert list(subset.data_vars) == ["alpha", "beta", "theta"]
    assert subset.sizes["group"] == kept
    assert note == f"Showing theta: the first {kept} of {GROUPS} entries."


def test_small_posteriors_are_shown_whole():
    posterior = fake_result()["posterior"].to_dataset()[["alpha", "beta"]]
    subset, note = select(posterior, "pair")
    assert subset.identical(posterior) and note == ""


def test_many_variables_are_cut():
    rng = np.random.default_rng(1)
    tree = make_datatree({"posterior": {f"v{i}": rng.normal(size=(2, 50)) for i in range(12)}})
    subset, note = select(tree["posterior"].to_dataset(), "rank")
    assert list(subset.data_vars) == [f"v{i}" for i in range(6)]
    assert note == "Showing the first 6 of 12 variables."


def test_trace_figure_is_a_real_image():
    figure = draw(fake_result(), "trace")
    width, height = png_size(figure.data)
    assert width >= 400 and height >= 300 and len(figure.data) > 20_000
    assert "theta" in figure.note


def test_energy_needs_energies():
    tree = make_datatree({"posterior": {"a": np.zeros((2, 10))}})
    with pytest.raises(ValueError, match="--kind energy needs the sampler's energies"):
        draw(tree, "energy")


def test_checks_pass_on_clean_draws():
    # Independent draws; long enough that the largest of 73 R-hats stays under 1.01.
    found = {c.name: c for c in checks(fake_result(draws=2000))}
    assert set(found) == {"Divergences", "E-BFMI", "Tree depth", "R-hat", "ESS (bulk)", "ESS (tail)"}
    assert all(c.ok for c in found.values()), [c for c in found.values() if not c.ok]


def test_checks_name_divergences_and_disagreeing_chains():
    found = {c.name: c for c in checks(fake_result(divergences=8, stuck_chain=True))}
    assert not found["Divergences"].ok and found["Divergences"].shown == f"8 of {CHAINS * DRAWS}"
    assert "target_accept" in found["Divergences"].words
    assert not found["R-hat"].ok and "alpha" in found["R-hat"].words


def test_report_is_one_self_contained_page():
    page = build_report(fake_result(divergences=3))
    assert page.startswith("<!DOCTYPE html>") and "fake_rats" in page
    assert page.count('src="data:image/png;base64,') == 3
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert "Showing theta: the first 5 of 71 entries." in page
    assert "3 of 800 transitions (0.38%) diverged" in page
    assert page.count("<tr") > GROUPS  # the whole summary table


def test_rank_titles_stay_clear_of_the_row_above():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pytensor_blackjax.cli._plots import _collection, _one_line_titles

    tree = fake_result()
    subset, _ = select(tree["posterior"].to_dataset(), "rank")
    fig = _collection(tree, subset, "rank").get_viz("figure")
    _one_line_titles(fig)
    renderer = fig.canvas.get_renderer()
    titles = [ax.title for ax in fig.axes if ax.get_title()]
    assert any(t.get_text() == "theta[0]" for t in titles), [t.get_text() for t in titles]
    below = [ax.xaxis.get_tightbbox(renderer) for ax in fig.axes]
    for title in titles:
        box = title.get_window_extent(renderer)
        assert not any(b is not None and box.overlaps(b) for b in below), title.get_text()
    plt.close(fig)


def test_report_and_warning_render_the_same_diagnostics():
    tree = fake_result(divergences=8, stuck_chain=True)
    shown = {c.name: c for c in checks(tree)}  # R-hat and ESS from ArviZ's summary
    warned = {c.name: c for c in diagnostics(tree)}  # R-hat and ESS from results' NumPy version
    assert shown["Divergences"] == warned["Divergences"] and shown["E-BFMI"] == warned["E-BFMI"]
    assert shown["R-hat"].threshold == warned["R-hat"].threshold == RHAT_MAX
    assert not shown["R-hat"].ok and not warned["R-hat"].ok
    assert shown["R-hat"].shown.endswith("(alpha)") and warned["R-hat"].shown.endswith("(alpha)")
    problems = diagnose(tree)
    assert problems[0].startswith("8 divergent transitions") and any(
        p.startswith("R-hat up to") for p in problems
    )
