"""`python -m invertavatar.server` — the same as `invertavatar serve`."""

import sys

from .main import main

sys.exit(main())
