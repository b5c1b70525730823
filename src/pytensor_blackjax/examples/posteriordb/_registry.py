"""The posteriordb posteriors by name: how to build each model and how to sample it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytensor_blackjax.examples.posteriordb import _latent, _regressions, _schools, _timeseries
from pytensor_blackjax.model import Model
from pytensor_blackjax.samplers import NUTS, Sampler

__all__ = ["POSTERIORS", "Posterior", "load", "load_data", "model", "names", "spec"]


@dataclass(frozen=True)
class Posterior:
    """One posteriordb posterior as shipped with the package.

    Attributes:
        name: the posteriordb name, ``<data set>-<model>``, also the folder name.
        build: data.json contents -> `Model`.
        nuts: keyword arguments of ``pbj.samplers.NUTS`` recommended for it (the validation suite
            uses them; see `sampler`), e.g. ``target_accept``.
        init_radius: where every sampler's chains start, uniform(-init_radius, init_radius) in
            unconstrained space, when the default uniform(-2, 2) can start them in a region they
            never leave (see `started`); None keeps each sampler's own.
        not_counted: why this posterior is expected to fail for every sampler ("" when it is not): the
            validation suite runs it and shows the result, but outside its pass/fail tally.
        note: why the settings differ from the defaults.
    """

    name: str
    build: Callable[[Mapping[str, Any]], Model]
    nuts: Mapping[str, Any] = field(default_factory=dict)
    init_radius: float | None = None
    not_counted: str = ""
    note: str = ""

    def sampler(self) -> NUTS:
        """The recommended NUTS configuration (built on demand, so a bad setting fails only this one)."""
        start = {} if self.init_radius is None else {"init_radius": self.init_radius}
        return NUTS(**{**start, **self.nuts})

    def started(self, sampler: Sampler) -> Sampler:
        """``sampler`` with this posterior's `init_radius`, when it has one and the sampler takes it.

        The start is a property of the posterior, not of NUTS: on ``arma-arma11`` HMC and MALA from
        the default uniform(-2, 2) start leave 3 of 4 chains stuck where ``|theta| > 1`` (seed 0; step
        sizes down to 1e-185 and 1e-71, R-hat 3.5) and pass from uniform(-0.2, 0.2).
        """
        fields: tuple[dataclasses.Field, ...] = ()
        if dataclasses.is_dataclass(sampler):
            fields = dataclasses.fields(sampler)
        if self.init_radius is None or "init_radius" not in {f.name for f in fields}:
            return sampler
        return dataclasses.replace(sampler, init_radius=self.init_radius)  # type: ignore[type-var]


POSTERIORS: dict[str, Posterior] = {
    p.name: p
    for p in [
        Posterior(
            "eight_schools-eight_schools_noncentered",
            _schools.eight_schools_noncentered,
            {"target_accept": 0.95},
            note="target_accept 0.95: a few divergences at 0.8 near small tau",
        ),
        Posterior(
            "eight_schools-eight_schools_centered",
            _schools.eight_schools_centered,
            not_counted="a funnel: divergences and a biased lower tail of tau are expected for every "
            "sampler; run at default settings to show the diagnostics see it",
        ),
        Posterior("kidiq-kidscore_interaction", _regressions.kidiq_kidscore_interaction),
        Posterior("earnings-logearn_interaction", _regressions.earnings_logearn_interaction),
        Posterior("arK-arK", _timeseries.arK),
        Posterior(
            "arma-arma11",
            _timeseries.arma11,
            {"target_accept": 0.95},
            init_radius=0.2,
            note="starts in uniform(-0.2, 0.2), target_accept 0.95: chains that start or wander into "
            "|theta| > 1 (exploding errors, log-density down to -1e200) stay stuck there",
        ),
        Posterior(
            "garch-garch11",
            _timeseries.garch11,
            {"target_accept": 0.9},
            note="target_accept 0.9: at 0.8 a divergence or a few in 4000 draws at 1-2 seeds of 8",
        ),
        Posterior("low_dim_gauss_mix-low_dim_gauss_mix", _latent.low_dim_gauss_mix),
        Posterior(
            "gp_pois_regr-gp_pois_regr",
            _latent.gp_pois_regr,
            {"target_accept": 0.99},
            note="target_accept 0.99 as in the reference run: divergences at 0.95",
        ),
        Posterior("diamonds-diamonds", _regressions.diamonds),
        Posterior("sblrc-blr", _regressions.sblrc_blr),
        Posterior("mesquite-logmesquite_logvas", _regressions.mesquite_logmesquite_logvas),
        Posterior("nes2000-nes", _regressions.nes2000_nes),
        Posterior(
            "kilpisjarvi_mod-kilpisjarvi",
            _regressions.kilpisjarvi,
            note="posterior variances span 1e-9 to 1e3, below the mass matrix's regularisation, "
            "so trajectories are long and some reach the maximum tree depth",
        ),
    ]
}


def names() -> tuple[str, ...]:
    """The names of the shipped posteriors.

    Example:
        >>> from pytensor_blackjax.examples import posteriordb
        >>> "arK-arK" in posteriordb.names()
        True
    """
    return tuple(POSTERIORS)


def spec(name: str) -> Posterior:
    """The `Posterior` entry of ``name``.

    Raises:
        KeyError: an unknown name; the message lists the known ones.
    """
    try:
        return POSTERIORS[name]
    except KeyError:
        known = sorted(POSTERIORS)
        raise KeyError(f"posteriordb posterior {name!r} is not shipped; known: {known}.") from None


def model(name: str, data: Mapping[str, Any]) -> Model:
    """Build the model of posterior ``name`` from its data set (the contents of its data.json).

    Args:
        name: a posteriordb name such as ``"eight_schools-eight_schools_noncentered"``.
        data: the data set, e.g. ``json.load(open(".../data.json"))``.

    Returns:
        A `Model` whose posterior uses the reference's names (``theta[1]`` is ``theta`` index 0).

    Raises:
        KeyError: an unknown name, or a data set without a field the model needs.

    Example:
        >>> from pytensor_blackjax.examples import posteriordb
        >>> data = {"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12], "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}
        >>> m = posteriordb.model("eight_schools-eight_schools_noncentered", data)
    """
    return spec(name).build(data)


def load_data(folder: str | Path) -> dict[str, Any]:
    """The data set of one posteriordb folder (its data.json).

    Raises:
        FileNotFoundError: the folder has no data.json.
    """
    path = Path(folder) / "data.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; give a posterior folder holding data.json.")
    with path.open() as f:
        return json.load(f)


def load(folder: str | Path) -> Model:
    """The model of a posteriordb folder, named like the posterior, with its data.json.

    Example:
        >>> from pytensor_blackjax.examples import posteriordb
        >>> m = posteriordb.load("../shared/posteriordb/arK-arK")  # doctest: +SKIP
    """
    folder = Path(folder)
    return model(folder.name, load_data(folder))
