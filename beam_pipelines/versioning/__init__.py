"""Versioned output: manifests, incremental refreshes, compaction and garbage collection."""
