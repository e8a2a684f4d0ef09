#!/usr/bin/env python3
"""How fast the lab's VAE learns, here and in PyTorch, over seeds: python quality.py --help"""

import sys

try:
    from apps.quality import main
except ModuleNotFoundError as err:  # a Python without the requirements: say how to set them up
    from apps import requirements_missing

    sys.exit(requirements_missing(err, __file__))

if __name__ == "__main__":
    sys.exit(main())
