"""``python -m swincli`` is the same as ``swin``."""

import sys

from swincli.cli import main

sys.exit(main())
