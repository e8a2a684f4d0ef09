#!/usr/bin/env python3
"""Time the lab's VAE training against PyTorch and the GEMM-bound limit: python bench.py --help"""

import sys

from apps.bench import main

if __name__ == "__main__":
    sys.exit(main())
