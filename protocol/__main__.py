"""``python -m protocol`` runs the ``e2ee`` command line."""

from protocol.cli import main

raise SystemExit(main())
