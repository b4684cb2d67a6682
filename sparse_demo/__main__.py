"""``python -m sparse_demo``: see :mod:`sparse_demo.cli`."""

from .cli import main

raise SystemExit(main())
