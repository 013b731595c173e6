"""Progress bars for the long loops (evaluation, tokenising, masking), on stderr and only on a terminal: a bar
redraws itself with carriage returns, which would fill a log file. ``--progress_bar false`` turns them all off."""
import os
import sys

from tqdm import tqdm

ENABLED = {"value": True}


def set_enabled(enabled):
    ENABLED["value"] = bool(enabled)


def progress(iterable, desc, total=None, unit="it"):
    """``iterable`` wrapped in a bar when bars are on and stderr is a terminal, else ``iterable`` itself."""
    if not (ENABLED["value"] and sys.stderr.isatty()):
        return iterable
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, mininterval=0.5, **bar_size())


def counter(total, desc, unit="it"):
    """A bar to ``update(n)`` by hand (a context manager), shown under the same conditions as ``progress``."""
    shown = ENABLED["value"] and sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, leave=False, mininterval=0.5, disable=not shown,
                **(bar_size() if shown else {}))


def bar_size():
    """Follow the terminal's size; a terminal that reports none (a new pseudo-terminal, some CI runners and
    ``docker exec -t``) would get no bar at all from tqdm (it draws nothing on 0 rows), so it gets 80 x 24."""
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except OSError:
        columns = 0
    return {"dynamic_ncols": True} if columns else {"ncols": 80, "nrows": 24}
