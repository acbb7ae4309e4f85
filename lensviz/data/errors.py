"""The error types of the data readers and writers.

Every reader of :mod:`lensviz.data` raises only these for bad content, whatever the
file holds:

* :class:`DataError` (a :class:`ValueError`): malformed, truncated or hostile content,
  values outside the documented bounds, missing datasets or folders, unpaired files.
* :class:`DataTypeError` (a :class:`DataError` and a :class:`TypeError`): an array of
  the wrong dtype, or an argument of the wrong type.
* :class:`UnsafeFileError` (a :class:`DataError`): a file refused for what it would make
  lensviz read outside it or resolve: HDF5 external storage, virtual datasets, soft or
  external links, filters that load plugins, symbolic links in a challenge folder.
* :class:`LimitError` (a :class:`DataError`): a declared size beyond a budget of
  :mod:`lensviz.data.limits`, refused before anything is allocated.

A problem that lensviz can repair without losing data is reported with
:class:`DataWarning` (a :class:`UserWarning`) instead: a FITS header whose WCS is
invalid has its WCS dropped, and the warning names the file and the card.

A path that does not exist raises :class:`FileNotFoundError`, and a writer that would
replace an existing output without ``overwrite=True`` raises :class:`FileExistsError`
(both :class:`OSError`). A user-facing caller therefore catches
``(ValueError, TypeError, OSError)``, or just :class:`DataError` for content.

Every message is one line: it names the file (or upload) and says what was found and
what was expected. Text taken from the file itself (names, foreign error messages) is
escaped and clipped by :func:`quote`, so a message never carries control characters,
a terminal escape sequence or an unbounded amount of foreign text; the command line
prints it as ``error: <message>``.
"""

from __future__ import annotations

__all__ = ["DataError", "DataTypeError", "UnsafeFileError", "LimitError", "DataWarning", "quote"]

_QUOTE_CHARS = 120  # foreign text shown in a message, at most (characters)


def _one_line(text: str) -> str:
    """``text`` with every control character (newlines included) escaped."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


class DataError(ValueError):
    """Malformed, hostile or out-of-bounds content of a data file or upload.

    ``str(error)`` is always a single printable line.
    """

    def __str__(self) -> str:
        return _one_line(super().__str__())


class DataTypeError(DataError, TypeError):
    """An array of the wrong dtype (or an argument of the wrong type)."""


class UnsafeFileError(DataError):
    """A file refused because reading it would reach outside it (links, external storage)."""


class LimitError(DataError):
    """A declared size beyond a documented budget (:mod:`lensviz.data.limits`)."""


class DataWarning(UserWarning):
    """Something of a file that lensviz leaves out and reads on without (an invalid WCS).

    ``str(warning)`` is one printable line that names the file.
    """

    def __str__(self) -> str:
        return _one_line(super().__str__())


def quote(value, limit: int = _QUOTE_CHARS) -> str:
    """Foreign text (a name, a key, a library's message) made safe for an error message.

    Parameters
    ----------
    value : object
        ``bytes`` are decoded as UTF-8 with backslash escapes for invalid bytes; any
        other object is formatted with ``str``.
    limit : int, optional
        Characters kept; longer text is cut and ends with ``…``.

    Returns
    -------
    str
        One printable line.

    Examples
    --------
    >>> quote(b"bad\\xffname\\n")
    'bad\\\\xffname\\\\n'
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value[: 4 * limit]).decode("utf-8", "backslashreplace")
    else:
        text = str(value)
    text = _one_line(text[: 4 * limit])
    return text if len(text) <= limit else text[: limit - 1] + "…"
