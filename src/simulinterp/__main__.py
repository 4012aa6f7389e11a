"""``python -m simulinterp`` (what ``torchrun -m`` and ``accelerate launch -m`` start)."""

import sys

from simulinterp.cli import main

sys.exit(main())
