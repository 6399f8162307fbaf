"""`python -m selftaught`: the `selftaught` command line (`cli.main`)."""

import sys

from .cli import main

sys.exit(main())
