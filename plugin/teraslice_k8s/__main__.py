"""``python -m teraslice_k8s``: the container entrypoint.

With ``NODE_TYPE`` set (``master``, ``execution_controller``, ``worker``) and no arguments it
starts that process, exactly as the rendered manifests expect; otherwise it is the CLI.
"""

import os
import sys

from teraslice_k8s.cli import entrypoint, main

if len(sys.argv) == 1 and os.environ.get("NODE_TYPE"):
    sys.exit(main(["node"]))
entrypoint()
