"""`python -m gitops_ml.quality build|status`: the deepchecks environment (`make install` builds it)."""

import sys

from gitops_ml.quality.environment import main

sys.exit(main())
