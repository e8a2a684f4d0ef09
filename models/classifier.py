"""A classifier: an MLP from an image to the scores of its classes, trained on softmax cross-entropy.

    logits = network(x)                          (N, C)   Dense + activation layers, linear at the end
    p      = softmax(logits)                     (N, C)   p[n, c] = exp(logits[n, c]) / sum_k exp(logits[n, k])
    loss   = 1/N sum_n -log p[n, labels[n]]               per image

Backward: dlogits = (p - onehot(labels)) / N (docs/derivations.md, "Softmax cross-entropy"),
then network.backward(dlogits), which fills every layer's grads.
"""

from nn import Generator, softmax_cross_entropy
from nn.backend import TRAIN_DTYPE, namespace

from .base import Model, mlp


class Classifier(Model):
    """input_dim -> hidden... -> n_classes logits.

    forward(x, labels) takes the labels, (N,) ints in [0, n_classes), and returns
    {"loss", "accuracy"}; accuracy is the fraction of the batch predicted right, reported and
    never differentiated. A classifier has no code or decoder: Model's code/decode/reconstruct
    and start_at do not apply. init: "uniform" or "he-xavier" (models/base.py, `mlp`).
    """

    def __init__(self, input_dim, n_classes, hidden=(256,), activation="relu", init="he-xavier", rng=None,
                 dtype=TRAIN_DTYPE):
        rng = rng or Generator(0)
        self.network = mlp((input_dim, *hidden, n_classes), activation, rng, dtype, init)
        self.network.layers[0].input_grad = False  # nothing upstream of x needs dL/dx
        self.n_classes, self.init = n_classes, init
        self.settings = ("n_classes", "init")
        self.parts = {"network": self.network}
        self.collect_params()

    def probabilities(self, x):
        """p = softmax(network(x)): (N, n_classes), each row summing to 1 (the row max subtracted first,
        which changes nothing but keeps exp from overflowing)."""
        logits = self.network.forward(x)
        xp = namespace(logits)
        e = xp.exp(logits - xp.max(logits, axis=1, keepdims=True))
        return e / xp.sum(e, axis=1, keepdims=True)

    def predict(self, x):
        """(N,) the most probable class of each image: the largest logit (softmax keeps the order)."""
        return namespace(x).argmax(self.network.forward(x), axis=1)

    def forward(self, x, labels, rng=None):
        """The loss terms of a batch x: (N, input_dim) with labels: (N,), as 0-d arrays: {"loss", "accuracy"}.

        rng: unused, a classifier draws no noise; accepted so that one loop trains every model.
        """
        xp = namespace(x, labels)
        logits = self.network.forward(x)
        loss, self.dlogits = softmax_cross_entropy(logits, labels)
        accuracy = xp.mean(xp.astype(xp.argmax(logits, axis=1) == labels, logits.dtype))
        return {"loss": loss, "accuracy": accuracy}

    def backward(self):
        """Fill self.grads with dloss/dparam for the batch of the last forward."""
        self.network.backward(self.dlogits)
