"""``python -m aiocometapi``: the same command line as ``aiocometapi``."""

import sys

from .cli import main

sys.exit(main())
