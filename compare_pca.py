#!/usr/bin/env python3
"""PCA, a linear autoencoder, an autoencoder and a VAE side by side: python compare_pca.py --help"""

import sys

try:
    from apps.compare_pca import main
except ModuleNotFoundError as err:  # a Python without the requirements: say how to set them up
    from apps import requirements_missing

    sys.exit(requirements_missing(err, __file__))

if __name__ == "__main__":
    sys.exit(main())
