#!/usr/bin/env python3
"""Train the lab's variational autoencoder (VAE) and write its figures: python train_vae.py --help"""

import sys

from apps.train_vae import main

if __name__ == "__main__":
    sys.exit(main())
