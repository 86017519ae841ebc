"""What the command lines print besides their own lines.

:func:`one_line_warnings`: a warning as one ``warning: <message>`` line. Python's default form adds the file, line
number and the source line that raised it (``samples = to_stereo_44k(...)``), two lines per file for a folder of
100 low-rate outputs, which buries the run's own lines; the message already names the file and the problem.
"""

from __future__ import annotations

import warnings


def _one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
              line: str | None = None) -> str:
    kind = "" if category is UserWarning else f" ({category.__name__})"
    return f"warning{kind}: {message}\n"


def one_line_warnings() -> None:
    """Print every later warning as one line (for a command line's ``main``; the library leaves the format be)."""
    warnings.formatwarning = _one_line  # type: ignore[assignment]


def prints_one_line_warnings() -> bool:
    """Whether :func:`one_line_warnings` is in force here (a worker process that a command line starts asks the
    same of its own warnings)."""
    return warnings.formatwarning is _one_line  # type: ignore[comparison-overlap]
