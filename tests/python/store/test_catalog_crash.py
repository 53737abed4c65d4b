"""A process killed in the middle of Catalog.create leaves the previous catalog intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from clipbranches import Catalog

# Writes a replacement catalog chunk by chunk and kills itself (SIGKILL: no cleanup code runs)
# once half of it is on disk.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from clipbranches import Catalog

    def stream():
        for i in range(100):
            if i == 50:
                os.kill(os.getpid(), signal.SIGKILL)
            yield np.full((1000, 32), 7, dtype=np.uint8)

    Catalog.create(sys.argv[1], stream(), overwrite=True)
    """
)


def test_kill_during_create_keeps_the_old_catalog(tmp_path: Path, catalog: Catalog, codes: np.ndarray) -> None:
    result = subprocess.run([sys.executable, "-c", CHILD, str(catalog.path)], check=False, timeout=120)
    assert result.returncode == -signal.SIGKILL
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "cat"]
    assert len(leftovers) == 1
    assert leftovers[0].startswith(".cat.partial-")  # hidden, never opened
    survivor = Catalog.open(catalog.path)
    np.testing.assert_array_equal(survivor.codes, codes)
    survivor.verify()
    # The next create of the same target sweeps the dead process's staging directory.
    Catalog.create(catalog.path, codes[:5], overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["cat"]
    assert os.path.getsize(catalog.path / "codes.u8") == 5 * 32
