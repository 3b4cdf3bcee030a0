"""`python -m aigc` is the `aigc` command."""
from .cli import main

raise SystemExit(main())
