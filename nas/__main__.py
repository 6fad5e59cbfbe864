"""`python -m nas`: the command line."""

import sys

from nas.cli.main import main

sys.exit(main())
