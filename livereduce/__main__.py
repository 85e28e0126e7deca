"""python -m livereduce [run|check|...] [CONFIG]"""

import sys

from livereduce.cli import main

sys.exit(main())
