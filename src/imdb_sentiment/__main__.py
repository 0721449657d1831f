"""``python -m imdb_sentiment``: the command line, also for launchers such as ``torchrun -m``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
