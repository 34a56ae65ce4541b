import sys

from beam_pipelines.cli import main

sys.exit(main())
