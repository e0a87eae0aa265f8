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


class ResourceError(BenchmarkError):
    """The machine cannot do what was asked: the disk is full, a device is missing or out of
    memory, a path is not writable. Nothing written is corrupt; the command can be rerun."""


# ---- known OS and library errors, as the user's errors they are -------------------------------

#: errno name -> what it means for the file named, and (optionally) what to do. Only errors a
#: user's input or machine causes; any other OSError stays a bug with its traceback.
_OS_ERRORS: dict[str, tuple[str, str]] = {
    "ENOSPC": ("no space left on the device", "free some space"),
    "EDQUOT": ("disk quota exceeded", "free some space"),
    "ENAMETOOLONG": (
        "file name too long for the filesystem",
        "use shorter names (--run-id, --name, --output-dir, identity or motion folder names)",
    ),
    "ENOTDIR": ("a component of this path is a file, not a directory", ""),
    "EISDIR": ("is a directory, expected a file", ""),
    "EEXIST": ("already exists and is not what was expected (a file where a folder goes?)", ""),
    "EACCES": ("permission denied", ""),
    "EPERM": ("operation not permitted", ""),
    "EROFS": ("read-only file system", ""),
    "ELOOP": ("too many levels of symbolic links (a link loop?)", ""),
    "EMFILE": ("too many open files", "raise the limit (ulimit -n)"),
}
#: errors of the disk filling up: whatever was being written was not kept
_RESUMABLE = ("ENOSPC", "EDQUOT")


def user_error(exc: BaseException, *, resumable: bool = False) -> BenchmarkError | None:
    """``exc`` as the :class:`BenchmarkError` a user should see (one line naming the file or
    the device), or None if it is not a known OS or library error (then it is a bug).

    ``resumable``: the command resumes where it stopped when rerun (``run``, ``evaluate``);
    a full disk then says so. The CLI calls this once, at its top, for every command.
    """
    import errno as _errno

    if isinstance(exc, BenchmarkError):
        return exc
    if isinstance(exc, OSError) and exc.errno is not None:
        name = _errno.errorcode.get(exc.errno, "")
        if name in _OS_ERRORS:
            problem, todo = _OS_ERRORS[name]
            where = _os_error_path(exc)
            if name in _RESUMABLE and resumable:
                todo += (
                    ", then rerun the same command: it resumes where it stopped (what was "
                    "being written was not kept)"
                )
            text = f"{where}: {problem}" if where else problem
            return ResourceError(f"{text}; {todo}" if todo else text)
    return _library_error(exc)


def _os_error_path(exc: OSError) -> str:
    paths = [p for p in (exc.filename, exc.filename2) if p not in (None, "")]
    return " -> ".join(str(p) for p in paths)


def _library_error(exc: BaseException) -> BenchmarkError | None:
    """torch's, pickle's and PIL's errors that mean bad input (matched by class name and
    message: this module imports no library)."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    text = " ".join(str(exc).split())
    if "Found no NVIDIA driver" in text or "Torch not compiled with CUDA enabled" in text:
        return ResourceError(
            "CUDA is not available on this machine (no GPU or driver); use --device cpu "
            "(and --backbone-set device=cpu)"
        )
    if kind.endswith("OutOfMemoryError") and "torch" in kind:
        return ResourceError(
            f"out of GPU memory ({text[:200]}); use a smaller profile, fewer frames or a GPU "
            "with more memory, then rerun the same command: it resumes where it stopped"
        )
    if kind == "_pickle.UnpicklingError" and "Weights only load failed" in text:
        return WeightsError(
            "a weights file holds pickled objects that are not plain tensors and was refused "
            "(weights_only); use the published checkpoint"
        )
    if kind == "PIL.Image.DecompressionBombError":
        return MediaError(f"image too large to decode safely ({text[:200]})")
    return None
