"""`python -m msmae.cli ...` is `msmae ...`."""

import sys

from . import main

sys.exit(main())
