"""What the Python-client test scripts share: a mismatch is an exception the script reports and exits on,
and originals are read straight from the file:// UFS the Rust test wrote."""

PAGE = 1024 * 1024


class Mismatch(Exception):
    """A byte, length or listing that differs from the UFS original."""


def check(cond, what):
    if not cond:
        raise Mismatch(what)


def original(path):
    with open(path, "rb") as f:
        return f.read()
