"""Our own GPU kernels: the packed layouts they read (torch only) and the Triton kernels themselves.

The Triton module imports Triton only when it is installed and is imported by its backend only in
``prepare()``, so ``quantresolve.dispatch`` stays importable (and the registry complete) without it.
"""
