"""Flex Template entry point: the launcher runs this file with the template's parameters as `--name=value`."""

import sys

from beam_pipelines.templates import launch

if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
