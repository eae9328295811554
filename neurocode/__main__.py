"""``python -m neurocode`` runs the command line."""

import sys

from neurocode.cli import main

sys.exit(main())
