"""``python -m virtkit.daemon``: the same as the ``virtkitd`` command."""

import sys

from virtkit.daemon.main import main

sys.exit(main())
