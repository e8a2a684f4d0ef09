"""The answers as prose writes them, for the scan of a workspace: the teacher's, never in a workspace.

course/workspace.py finds an answer in any file of a workspace by the reference's own lines,
normalised (spacing, quotes, `self.`, `xp.`); Markdown, notebooks, docstrings and comments
write the same answers in the derivation's names instead. PROSE holds those, normalised the
same way when looked for. Like course/mistakes.py, this file is answer text by design: make
exercises leaves it out (workspace.TEACHERS).
"""

PROSE = {
    "numerical_grad": ("f(x + h e_i) - f(x - h e_i)) / (2h)", ") / (2 * h)", ") / (2h)"),
    "Dense.backward": ("x.T @ dout", "dout @ W.T"),
    "Sigmoid.backward": ("y * (1 - y)", "y (1 - y)", "x_hat * (1 - x_hat)", "sigmoid * (1 - sigmoid)"),
    "Tanh.backward": ("1 - y**2", "1 - tanh**2"),
    "mse": ("2 (x_hat - x) / N", "2 * (x_hat - x) / N"),
    "bce": ("(x_hat - x) / N", "(p - x) / N", "(sigmoid(logits) - x) / N"),
    "gaussian_kl": ("(exp(logvar) - 1) / (2 N)", "(var - 1) / 2"),
    "gaussian_nll": ("(x_hat - x) / (sigma**2 N)", "(x_hat - x) / (var * N)", "N D / 2 - S / (2 sigma**2)",
                     "1/2 - (x - x_hat)**2 / (2 sigma**2)"),
    "VAE.backward": ("eps * 0.5 * std", "dmu @ W_mu.T", "dlogvar @ W_logvar.T", "beta * mu / N"),
}
