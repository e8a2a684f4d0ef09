"""What Part One measures: how far an autoencoder's code and decoder land from PCA's.

Plain NumPy and SciPy on host arrays, used by studies/part_one.py (compare_pca.py) and the
Part One notebook. Each function's docstring says what its number means; the module
docstring of studies/part_one.py says why each is measured.
"""

import numpy as np
from scipy.linalg import subspace_angles
from scipy.spatial import cKDTree
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from lab.plots import latent_grid


def fit_pca(x_train, k):
    """scikit-learn's PCA with k components of x_train: (N, D) floats."""
    # covariance_eigh: eigenvectors of the D x D covariance, fast when N >> D as here.
    return PCA(n_components=k, svd_solver="covariance_eigh").fit(x_train)


def principal_angles_deg(A, B):
    """Principal angles, in degrees and ascending, between the column spaces of A: (D, k) and B: (D, k)."""
    return np.sort(np.degrees(subspace_angles(np.asarray(A, np.float64), np.asarray(B, np.float64))))


def pairwise_angles_deg(V):
    """Angles in degrees between every pair of the columns of V: (D, k)."""
    unit = V / np.linalg.norm(V, axis=0)
    k = V.shape[1]
    return [float(np.degrees(np.arccos(np.clip(unit[:, i] @ unit[:, j], -1.0, 1.0))))
            for i in range(k) for j in range(i + 1, k)]


def knn_accuracy(z_train, y_train, z_test, y_test, n_neighbors=5):
    """Fraction of the test codes z_test: (n, k) whose n_neighbors nearest training codes
    z_train: (N, k) vote, by majority, for the test image's own class."""
    vote = KNeighborsClassifier(n_neighbors).fit(z_train, y_train).predict(z_test)
    return float(np.mean(vote == y_test))


def fraction_inside(z, extent):
    """Fraction of the codes z: (n, k) inside the square [lo, hi]^k, extent = (lo, hi)."""
    lo, hi = extent
    return float(np.mean(np.all((z >= lo) & (z <= hi), axis=1)))


def whiten(z):
    """Codes z: (n, k) moved to mean 0 and covariance I: what is left is the shape of their
    distribution, the same for z @ A with any invertible A: (k, k)."""
    centred = z - z.mean(axis=0)
    variances, axes = np.linalg.eigh(np.cov(centred, rowvar=False).reshape(z.shape[1], z.shape[1]))
    # A direction without variance (a collapsed code) stays at 0 instead of becoming 0/0.
    return centred @ axes / np.sqrt(np.maximum(variances, 1e-12 * variances.max()))


def code_fill(z, n=21, half_width=2.0):
    """Fraction of the n x n grid over [-half_width, half_width]^2 with a whitened code of
    z: (m, 2) within one grid step: near 1 for a dense Gaussian cloud, less with gaps."""
    step = 2 * half_width / (n - 1)
    nearest, _ = cKDTree(whiten(z)).query(latent_grid(n, (-half_width, half_width)))
    return float(np.mean(nearest <= step))


def decoder_jacobian(decode, z0, h=1e-2):
    """dx_hat/dz at z0: (k,), by the five-point stencil of decode: (n, k) -> (n, D), exact for a
    polynomial of degree 4 and off by O(h**4) otherwise. Returns (D, k)."""
    k = z0.shape[0]
    steps = np.eye(k) * h
    near = decode(z0 + steps) - decode(z0 - steps)  # row j: decode at z0 + h e_j less at z0 - h e_j
    far = decode(z0 + 2 * steps) - decode(z0 - 2 * steps)  # the same, 2 h either side
    return ((8 * near - far) / (12 * h)).T


def test_mse(x_hat, x):
    """Squared error summed over pixels, averaged over images: the training loss's convention."""
    return float(np.mean(np.sum((x_hat - x) ** 2, axis=1)))


test_mse.__test__ = False  # a metric, not a test, whatever pytest guesses from its name


def reconstruction_mse(reconstruct, x, scale, batch_size=1000):
    """test_mse of reconstruct: (B, D) -> (B, D) floats over the uint8 images x: (N, D),
    batch by batch: 60000 FashionMNIST images in float64 would take 376 MB at once."""
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        batch = x[start:start + batch_size].astype(np.float64) * scale
        total += float(np.sum((reconstruct(batch) - batch) ** 2))
    return total / x.shape[0]


def line_between(a, b, steps):
    """`steps` evenly spaced points from a to b, both included: (steps, *a.shape).
    Decoded, the line between two codes shows what lies between two images for the model."""
    t = np.linspace(0.0, 1.0, steps).reshape(-1, *([1] * np.ndim(a)))
    return (1 - t) * a + t * b
