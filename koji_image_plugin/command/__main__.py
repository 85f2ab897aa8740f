"""``python -m koji_image_plugin.command``: the ``koji-image`` command."""

import sys

from . import main

sys.exit(main())
