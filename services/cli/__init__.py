"""The ``modelci`` command line."""
