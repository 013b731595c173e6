"""Command-line conventions shared by the entry scripts."""
import argparse
import os


def str2bool(value):
    """The seed's ``--flag true|false`` booleans (also 1/0, yes/no)."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "1", "yes", "y"):
        return True
    if value.lower() in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def file_beside(path, name):
    """``name`` in the folder of ``path`` when that file exists, else ""."""
    candidate = os.path.join(os.path.dirname(path), name) if path else ""
    return candidate if candidate and os.path.exists(candidate) else ""
