"""``python -m teraslice_k8s.runtime``: an execution controller or worker (see :mod:`.node`)."""

import sys

from teraslice_k8s.runtime.node import main

sys.exit(main())
