# SPDX-License-Identifier: GPL-2.0-or-later
"""Waiting for a condition that another process makes true."""

import time


def wait_for(what, cond, timeout=10.0, step=0.05):
    """Calls cond() until it returns something true, and returns that;
    raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
