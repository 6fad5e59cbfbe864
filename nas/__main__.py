"""`python -m nas`: the command line."""

import sys

from nas.cli import main

sys.exit(main())
