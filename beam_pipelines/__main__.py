import sys

from beam_pipelines.cli import entry

sys.exit(entry())
