"""The sharded chain layout: chains split over the devices of a mesh (every device of every process
after ``pbj.distributed.initialize``), the chains on one device vmapped together; the chain count is
padded to a multiple of the device count with copies of chain 0 that are dropped on the way out."""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from pytensor_blackjax.run._layout_base import ChainLayout, host
from pytensor_blackjax.run._programs import CHAIN_AXIS, Programs, jit_program, vmap_over_chains

__all__ = ["Sharded", "chain_mesh"]


def chain_mesh(chains: int) -> Mesh:
    """The devices chains are sharded over: all global devices when several processes take part
    (each must hold a share), else at most one device per chain."""
    devices = jax.devices()
    if jax.process_count() == 1:
        devices = devices[: max(1, min(len(devices), chains))]
    return Mesh(np.array(devices), (CHAIN_AXIS,))


class Sharded(ChainLayout):
    """Chains split over a mesh of devices, vmapped within a device. Keys travel as raw key data
    (uint32) so they can be laid out like any other array."""

    name = "sharded"
    storable = False
    one_step = False

    def __init__(self, programs: Programs, keys: jax.Array, seed: int, data: tuple, *, precision: str):
        super().__init__(programs, keys, seed, data, precision=precision)
        mesh = self.mesh_for(self.chains)
        self.padded = math.ceil(self.chains / mesh.size) * mesh.size
        self._split = NamedSharding(mesh, PartitionSpec(CHAIN_AXIS))
        self._whole = NamedSharding(mesh, PartitionSpec())
        self._key_data = self._spread(np.asarray(jax.random.key_data(keys)))
        self._global_data = self._replicated(data)

    @classmethod
    def mesh_for(cls, chains: int) -> Mesh:
        return chain_mesh(chains)

    @classmethod
    def build(cls, base: Programs, mesh: Mesh | None) -> Programs:
        if mesh is None:
            raise ValueError("the sharded chain layout needs a device mesh")
        chains, rep = PartitionSpec(CHAIN_AXIS), PartitionSpec()
        wrap = jax.random.wrap_key_data
        v = vmap_over_chains(base)

        def mapped(name, fn, *specs):
            # no collectives inside: each device runs its chains alone, so replication checks are moot
            # (and would reject the samplers' lax.cond branches that return fresh constants)
            sharded = jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=chains, check_vma=False)
            return jit_program(name, sharded)

        return Programs(
            mapped(
                "warmup_init", lambda kd, pos, data: v.warmup_init(wrap(kd), pos, data), chains, chains, rep
            ),
            mapped(
                "warmup",
                lambda ws, kd, start, n, rows, data: v.warmup(ws, wrap(kd), start, n, rows, data),
                chains, chains, rep, rep, rep, rep,
            ),
            mapped("finish", v.finish, chains),
            mapped(
                "sample",
                lambda st, params, kd, start, n, data: v.sample(st, params, wrap(kd), start, n, data),
                chains, chains, chains, rep, rep, rep,
            ),
            jit_program("constrain", base.constrain),
            jit_program("log_likelihood", base.log_likelihood),
            None if v.window_end is None else mapped("window_end", v.window_end, chains),
        )  # fmt: skip

    # host arrays <-> global arrays over the mesh
    def _put(self, x, sharding):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    def _spread(self, tree):
        """Host tree with ``chains`` rows -> global arrays with ``padded`` rows, split over devices."""

        def pad(x):
            x = np.asarray(x)
            extra = np.repeat(x[:1], self.padded - self.chains, axis=0)
            return self._put(np.concatenate([x, extra]), self._split)

        return jax.tree.map(pad, tree)

    def _replicated(self, tree):
        return jax.tree.map(lambda x: self._put(x, self._whole), tree)

    def _gather(self, tree):
        """Global arrays -> host arrays of the real chains (every process receives all of them)."""
        if jax.process_count() > 1:
            tree = multihost_utils.process_allgather(tree, tiled=True)
        return jax.tree.map(lambda x: np.asarray(x)[: self.chains], host(tree))

    def _init(self, positions):
        return self.programs.warmup_init(self._key_data, self._spread(positions), self._global_data)

    def _warmup(self, start, n_valid, rows):
        put = self._replicated
        self.carry, stats = self.programs.warmup(
            self.carry, self._key_data, put(np.int32(start)), put(np.int32(n_valid)), put(rows),
            self._global_data,
        )  # fmt: skip
        return self._gather(stats)

    def _finish(self):
        return self.programs.finish(self.carry)

    def _window_end(self):
        return self.programs.window_end(self.carry)

    def _sample(self, start, n_valid):
        put = self._replicated
        self.carry, out = self.programs.sample(
            self.carry, self.params, self._key_data, put(np.int32(start)), put(np.int32(n_valid)),
            self._global_data,
        )  # fmt: skip
        return self._gather(out)

    def _state(self):
        return self._gather(self.carry), None if self.params is None else self._gather(self.params)

    def _load(self, state, params):
        self.carry = self._spread(state)
        self.params = None if params is None else self._spread(params)
