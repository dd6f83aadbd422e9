"""Tiny shared utilities that know nothing of quantization (the bottom layer, with :mod:`quantresolve.errors`).

- :mod:`.gcpause` — pause the cyclic garbage collector while building large acyclic structures;
- :mod:`.jsonfile` — strict JSON: duplicate keys refused, size-capped files that stay inside a root;
- :mod:`.version` — the package version (the root facade and the audit report read it from here).

Nothing here imports another quantresolve package except :mod:`quantresolve.errors`.
"""
