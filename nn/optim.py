"""Optimisers that update parameters in place.

An optimiser is built on a dict of parameter arrays (`model.params`) and its
`step(grads)` takes the dict of their gradients (`model.grads`), key for key.
Updating in place keeps the layers' references valid and allocates no new parameters.
"""

from .backend import load_arrays, namespace, to_numpy


class Optimizer:
    """What Adam and SGD share: the parameters, the per-parameter state, saving it."""

    state_names = ()

    def __init__(self, params, lr):
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.params, self.lr, self.t = params, lr, 0
        # One zero buffer per parameter and per state name (m, v for Adam).
        self.state = {
            name: {k: namespace(p).zeros_like(p) for k, p in params.items()} for name in self.state_names
        }

    def step(self, grads):
        missing = self.params.keys() - grads.keys()
        if missing:
            raise ValueError(f"no gradient given for {sorted(missing)}: run backward() before step()")
        self.t += 1
        for k, p in self.params.items():
            self.update(p, grads[k], *(self.state[name][k] for name in self.state_names))

    def state_dict(self):
        """{'t': step count, '<state>.<param>': array}: NumPy arrays, ready for a .npz file."""
        state = {"t": self.t}
        for name, buffers in self.state.items():
            state.update({f"{name}.{k}": to_numpy(b) for k, b in buffers.items()})
        return state

    def load_state_dict(self, state):
        """Restore what state_dict saved, in place; a missing or misshapen buffer is named."""
        buffers = {f"{name}.{k}": b for name, bufs in self.state.items() for k, b in bufs.items()}
        load_arrays(buffers, {k: v for k, v in state.items() if k != "t"}, what="optimiser state")
        self.t = int(state["t"])


# Moments of weights that never get a gradient (pixels black in every image, dead ReLU
# units) shrink by b1 every step, into subnormal floats, on which many x86 processors
# compute up to ~100x slower. Adding and subtracting FLUSH rounds |m| below 2**-101
# (float32; 2**-130 in float64) to exactly 0 and leaves every larger m as it was.
FLUSH = 2.0**-77


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1).

    m = b1 m + (1 - b1) g                  first moment (a running mean of g)
    v = b2 v + (1 - b2) g**2               second moment (a running mean of g**2)
    p -= lr * m_hat / (sqrt(v_hat) + eps)  with m_hat = m / (1 - b1**t), v_hat = v / (1 - b2**t)

    `update` is these lines, on every backend; docs/derivations.md, "Adam", derives the
    form it takes and its one extra line.
    """

    state_names = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        self.b1, self.b2 = betas
        self.eps = eps

    def update(self, p, g, m, v):
        """Step t of Algorithm 1 on a parameter p, its gradient g and moments m, v. All one shape.

        t = self.t, already counted by step(); b1, b2 = self.b1, self.b2. p, m and v are the
        optimiser's own arrays: update them in place (m = ... would make a new one). g stays as it was.

        Derived in docs/derivations.md, "Adam": the bias corrections become two scalars (the paper's
        Section 2): p -= lr_t * m / (sqrt(v) + eps_t), lr_t = lr sqrt(1 - b2**t) / (1 - b1**t),
        eps_t = eps sqrt(1 - b2**t); and m += FLUSH; m -= FLUSH.
        """
        xp = namespace(p, g)  # refuses a gradient from another backend
        b1, b2, t = self.b1, self.b2, self.t
        m *= b1
        m += (1.0 - b1) * g
        m += FLUSH  # (m + FLUSH) - FLUSH: m, or 0 where m would be subnormal
        m -= FLUSH
        v *= b2
        v += (1.0 - b2) * (g * g)
        lr_t = self.lr * (1.0 - b2**t) ** 0.5 / (1.0 - b1**t)
        eps_t = self.eps * (1.0 - b2**t) ** 0.5
        p -= lr_t * m / (xp.sqrt(v) + eps_t)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (the form PyTorch uses).

    u = momentum * u + g;   p -= lr * u.   With momentum = 0 this is plain p -= lr * g.
    """

    state_names = ("u",)

    def __init__(self, params, lr=1e-2, momentum=0.0):
        super().__init__(params, lr)
        self.momentum = momentum

    def update(self, p, g, u):
        u *= self.momentum
        u += g
        p -= self.lr * u
