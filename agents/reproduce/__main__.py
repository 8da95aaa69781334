"""``python -m agents.reproduce FIGURE_SET``: see :mod:`agents.reproduce`."""
import sys

from agents.reproduce import main

sys.exit(main())
