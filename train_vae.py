#!/usr/bin/env python3
"""Train the lab's variational autoencoder (VAE) and write its figures: python train_vae.py --help"""

import sys

try:
    from apps.train_vae import main
except ModuleNotFoundError as err:  # a Python without the requirements: say how to set them up
    from apps import requirements_missing

    sys.exit(requirements_missing(err, __file__))

if __name__ == "__main__":
    sys.exit(main())
