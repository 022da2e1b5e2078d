"""scenarios: fault vocabulary, workloads, checker, catalog, and the ``warren`` CLI."""
