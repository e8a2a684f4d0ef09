#!/usr/bin/env python3
"""Train the lab's autoencoder and write its figures: python train_ae.py --help"""

import sys

from apps.train_ae import main

if __name__ == "__main__":
    sys.exit(main())
