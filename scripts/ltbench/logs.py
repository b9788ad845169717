"""Send a job's stdout and stderr to its log file, tracebacks included."""

from __future__ import annotations

import contextlib
import sys
import traceback
from typing import Iterator


@contextlib.contextmanager
def redirect_to_log(path: str | None) -> Iterator[None]:
    """Redirect stdout/stderr into ``path`` (line-buffered); ``None`` leaves them alone.

    An exception is written to the log with its traceback and then re-raised, so it
    shows both in the job log and in Snakemake's error report.
    """
    if path is None:
        yield
        return
    with open(path, "w", buffering=1) as log:
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log
        try:
            yield
        except BaseException:
            traceback.print_exc(file=log)
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err
