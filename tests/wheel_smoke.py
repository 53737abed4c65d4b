"""Smoke test of an installed wheel, run from outside the repository by `make wheel-check`.

It proves the wheel carries the native module, the Python package and its type information,
and that a catalog can be written and read back with it.
"""

import pathlib
import sys
import tempfile

import numpy as np

import clipbranches
from clipbranches import Catalog

package_dir = pathlib.Path(clipbranches.__file__).parent
assert "site-packages" in str(package_dir), f"imported from {package_dir}, not from the wheel"
assert (package_dir / "py.typed").exists(), "py.typed missing from the wheel"
assert (package_dir / "_core.pyi").exists(), "_core.pyi missing from the wheel"

with tempfile.TemporaryDirectory() as tmp:
    codes = np.arange(64, dtype=np.uint8).reshape(2, 32)
    catalog = Catalog.create(pathlib.Path(tmp) / "c", codes)
    assert np.array_equal(Catalog.open(pathlib.Path(tmp) / "c").codes, codes)
    catalog.verify()
print(f"wheel OK: clipbranches {clipbranches.__version__} on Python {sys.version.split()[0]}")
