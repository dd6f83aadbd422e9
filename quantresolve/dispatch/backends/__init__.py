"""Backends: the kernels that run a layer, each with the guards that say when it can, in preference order.

Place in the flow: above :mod:`..shards` (a backend prepares one shard group), :mod:`..kernels`,
:mod:`..codecs` and everything below them; below :mod:`..selection` and the layers. Pieces:
the interface (:mod:`.base`), the shared guards (:mod:`.needs`), input and integer-view helpers
(:mod:`.inputs`, :mod:`.int_weights`), one module per backend family registering with
:mod:`.registry`, and :mod:`.catalog` — the preference order, and the only importer of the backend
modules.
"""

from quantresolve.dispatch.backends.base import Backend
from quantresolve.dispatch.backends.catalog import BACKENDS, PREFERENCE
from quantresolve.dispatch.shards import Shard, ShardGroup

__all__ = ["BACKENDS", "PREFERENCE", "Backend", "Shard", "ShardGroup"]
