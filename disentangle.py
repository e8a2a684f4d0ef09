#!/usr/bin/env python3
"""Does FashionMNIST disentangle less nicely than MNIST? python disentangle.py --help"""

import sys

try:
    from apps.disentangle import main
except ModuleNotFoundError as err:  # a Python without the requirements: say how to set them up
    from apps import requirements_missing

    sys.exit(requirements_missing(err, __file__))

if __name__ == "__main__":
    sys.exit(main())
