"""``python -m nbws``: the command line (see :mod:`nbws.cli`)."""

import sys

from .cli import main

sys.exit(main())
