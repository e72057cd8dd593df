"""Benchmarks of the drift service (``modelci bench drift`` / ``modelci bench detection``) and the
synthetic workload they and the tests publish."""
