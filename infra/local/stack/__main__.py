"""`python -m infra.local.stack` is the CLI of infra/local/run (see cli.py)."""

from infra.local.stack.cli import main

raise SystemExit(main())
