"""Progress bars for the long loops (evaluation, tokenising, masking), on stderr and only on a terminal: a bar
redraws itself with carriage returns, which would fill a log file. ``--progress_bar false`` turns them all off."""
import sys

from tqdm import tqdm

ENABLED = {"value": True}


def set_enabled(enabled):
    ENABLED["value"] = bool(enabled)


def progress(iterable, desc, total=None, unit="it"):
    """``iterable`` wrapped in a bar when bars are on and stderr is a terminal, else ``iterable`` itself."""
    if not (ENABLED["value"] and sys.stderr.isatty()):
        return iterable
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True, mininterval=0.5)
