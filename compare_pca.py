#!/usr/bin/env python3
"""PCA, a linear autoencoder, an autoencoder and a VAE side by side: python compare_pca.py --help"""

import sys

from apps.compare_pca import main

if __name__ == "__main__":
    sys.exit(main())
