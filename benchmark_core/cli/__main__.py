"""``python -m benchmark_core.cli``: the ``bench`` command without its console script."""

import sys

from benchmark_core.cli import main

sys.exit(main())
