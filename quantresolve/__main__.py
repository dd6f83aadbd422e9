"""``python -m quantresolve``: the same command line as ``quantresolve``."""

from quantresolve.cli.main import main

raise SystemExit(main())
