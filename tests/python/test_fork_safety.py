"""The native pool survives a fork (torch's DataLoader forks after the parent used it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from clipbranches.store import Box
    from clipbranches import testing

    catalog = testing.make_catalog(sys.argv[1], 20000, k=10)
    catalog.build_index()
    boxes = [Box((0, 1), (0, 0), (200, 200), g) for g in range(3)]
    expected = np.sort(catalog.query_boxes(boxes).rows)  # the parent's worker threads now run
    pid = os.fork()
    if pid == 0:  # the child has no worker threads: the library must not wait for them
        ok = np.array_equal(np.sort(catalog.query_boxes(boxes).rows), expected)
        ok &= np.array_equal(catalog.query_boxes(boxes, method="scan").rows, expected)
        ok &= catalog.nearest(catalog.codes[:2], 5)[1][0, 0] == 0
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_queries_work_in_a_forked_child(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "cat")], check=False, timeout=60, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
