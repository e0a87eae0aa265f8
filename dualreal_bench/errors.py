"""User-facing errors.

Every error a user can cause with bad input (a missing file, a corrupt video, an unknown
name, a contradictory config) is a :class:`BenchmarkError`. The CLI prints its message on
one line and exits with code 2; anything else is a bug and keeps its traceback.
Messages name the file (or the name) and the problem.
"""

from __future__ import annotations


class BenchmarkError(Exception):
    """Base class of errors caused by the user's input; the CLI exits with code 2."""

    exit_code = 2


class ConfigError(BenchmarkError, ValueError):
    """A configuration value is invalid or contradicts another."""


class DataError(BenchmarkError):
    """An input file or directory is missing, unreadable or malformed."""


class MediaError(DataError):
    """An image or video cannot be decoded (corrupt, empty, zero frames, unknown codec)."""


class WeightsError(BenchmarkError):
    """Model weights are missing or do not match the expected architecture."""


class RegistryError(BenchmarkError, KeyError):
    """An unknown method, suite, profile or metric name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
