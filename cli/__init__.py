"""The `gateway` command: the composition root that wires settings, storage, edges and workers.

Start-up builds some hundred thousand objects (modules, classes, the settings, the mapped schema)
and frees almost none of them, so the collector's passes over them are wasted time. Where this
package is the program (`gateway …`, `python -m cli …`: not when a test imports it), collection
is off until the runtime is built (cli/runtime.py), which freezes what start-up built out of the
collector's way and turns it back on; a command that builds no runtime ends before it matters.
"""

import gc
import os
import sys

if sys.argv[:1] == ["-m"] or os.path.basename(sys.argv[0] if sys.argv else "") == "gateway":
    gc.disable()
