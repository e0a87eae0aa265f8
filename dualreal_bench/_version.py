"""The package version, in a module of its own: whatever needs it (the CLI's ``--version``, the
report's export) imports it from here, not from the package root, which imports ``method``."""

__version__ = "0.1.0"
