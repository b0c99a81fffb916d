"""What the Python-client test scripts share: a mismatch is an exception the script reports and exits on,
and originals are read straight from the file:// UFS the Rust test wrote. The unmodified clients send no
credentials; what needs a token (writes, loads) gets `Authorization: Bearer $LOAM_TOKEN` added by the
requests library once a script calls `send_token_on` (as a deployment's session hook or proxy would)."""

import os
import sys

import requests

PAGE = 1024 * 1024


class Mismatch(Exception):
    """A byte, length or listing that differs from the UFS original."""


def run(main):
    """Runs a script's `main`: its return value is the exit status; a Mismatch is reported and exits 1."""
    try:
        sys.exit(main())
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)


def check(cond, what):
    if not cond:
        raise Mismatch(what)


def original(path):
    with open(path, "rb") as f:
        return f.read()


def fails(f):
    """Whether `f()` raises or answers something falsy."""
    try:
        return not f()
    except Exception:
        return True


def token_headers():
    """The `Authorization` header of $LOAM_TOKEN."""
    return {"Authorization": "Bearer " + os.environ["LOAM_TOKEN"]}


def send_token_on(marker):
    """From now on, every request of the requests library whose URL contains `marker` carries the token."""
    plain = requests.Session.request

    def request(self, method, url, *args, **kwargs):
        if marker in str(url):
            kwargs["headers"] = {**(kwargs.pop("headers", None) or {}), **token_headers()}
        return plain(self, method, url, *args, **kwargs)

    requests.Session.request = request
