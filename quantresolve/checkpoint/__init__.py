"""Checkpoint reading without tensor data: catalogue, module inventory, tensor evidence.

Torch-free by design (the audit runs on machines without it)::

    catalog = read_checkpoint("path/to/checkpoint")      # headers only
    inventory = build_inventory(catalog)                 # tensor names -> modules
    evidence = classify_inventory(inventory)              # module name -> Evidence
"""

from .catalog import CheckpointCatalog, TensorInfo
from .evidence import (
    RECOGNISERS,
    Evidence,
    classify_inventory,
    classify_module,
    packed_logical_shape,
)
from .grouping import ExpertContainer, FusedGroup, group_experts, group_fused
from .inventory import Inventory, Module, build_inventory
from .locate import Location, locate, parse_repo_ref
from .reader import LocalShards, ShardSource, read_checkpoint
from .suffixes import SUFFIX_RULES, split_parameter

__all__ = [
    "RECOGNISERS",
    "SUFFIX_RULES",
    "CheckpointCatalog",
    "Evidence",
    "ExpertContainer",
    "FusedGroup",
    "Inventory",
    "LocalShards",
    "Location",
    "Module",
    "ShardSource",
    "TensorInfo",
    "build_inventory",
    "classify_inventory",
    "classify_module",
    "group_experts",
    "group_fused",
    "locate",
    "packed_logical_shape",
    "parse_repo_ref",
    "read_checkpoint",
    "split_parameter",
]
