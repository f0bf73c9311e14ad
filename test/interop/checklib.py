"""PASS/FAIL reporting shared by the Python checkers (ws_check.py, edge_check.py).

Each check prints one line, "PASS what" or "FAIL what: why"; run.sh counts them.
exit_status() is the checker's exit status: 1 once any check failed.
"""

TIMEOUT = 15.0  # seconds any single wait may take

_failed = 0


def report(ok, what, why=""):
    global _failed
    if ok:
        print(f"PASS {what}", flush=True)
    else:
        _failed += 1
        print(f"FAIL {what}: {why}", flush=True)


def exit_status():
    return 1 if _failed else 0
