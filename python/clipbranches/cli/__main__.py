"""``python -m clipbranches.cli``: the same as the ``clipbranches`` command."""

import sys

from clipbranches.cli import main

sys.exit(main())
