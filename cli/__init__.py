"""The `gateway` command: the composition root that wires settings, storage, edges and workers."""
