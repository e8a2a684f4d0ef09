#!/usr/bin/env python3
"""Part Three: is a VAE a powerful tool for data augmentation? python augment.py --help"""

import sys

from apps.augment import main

if __name__ == "__main__":
    sys.exit(main())
