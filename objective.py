#!/usr/bin/env python3
"""What does the VAE's objective trade? python objective.py --help"""

import sys

try:
    from apps.objective import main
except ModuleNotFoundError as err:  # a Python without the requirements: say how to set them up
    from apps import requirements_missing

    sys.exit(requirements_missing(err, __file__))

if __name__ == "__main__":
    sys.exit(main())
