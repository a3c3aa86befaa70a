"""The ``infoshare`` command."""
