"""``python -m devtools.synthetic --target ... --apps ... --start ...``: see devtools.synthetic."""

import sys

from devtools.synthetic import main

sys.exit(main())
