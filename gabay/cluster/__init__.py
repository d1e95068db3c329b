"""Redis-shared state of the cluster: connection, registry, pause flags, stats, status and control."""
