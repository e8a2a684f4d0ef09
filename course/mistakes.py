"""The classic wrong answers of each exercise: the catalogue the grader recognises them by.

This file is answer text (every edit names a line of the reference), so it is the teacher's
alone: the student's workspace leaves it out, and keeps only the numbers each mistake gives
on the grader's inputs (course/key.py). course/exercises.py, the checks, holds no answer.

A Mistake is one or more edits of the reference function, each (reference code, wrong code):
an expression, or one or more statements, matched on the syntax tree (course/edits.py: ast.dump,
so spacing, quotes, comments and line breaks never matter), never on the file's bytes. An edit
whose reference code is "" puts its wrong code first in the body. `variants`: other edits that
make the same mistake (dout's axes in any of the 23 wrong orders), each tried in turn.
"""

import itertools
from dataclasses import dataclass

from .edits import edited


@dataclass(frozen=True)
class Mistake:
    """A classic wrong answer: `edits` ((reference code, wrong code), ...) made in the reference
    function; `hint`: what the grader tells a student whose answer gives the same values."""

    name: str
    hint: str
    edits: tuple
    variants: tuple = ()

    @property
    def versions(self):
        """Every set of edits that makes this mistake: edits, then each variant."""
        return ((self.edits,) if self.edits else ()) + tuple(self.variants)


def with_mistake(source, exercise, mistake, version=0):
    """`source` (a whole file) with `mistake`'s edits (its `version`-th set) made inside the
    exercise's function: what a student who made that mistake would have written."""
    for old, new in mistake.versions[version]:
        try:
            source = edited(source, exercise.qualname, old, new)
        except LookupError as err:
            raise ValueError(f"mistake {mistake.name!r} of {exercise.qualname}: {err}") from None
    return source


def of(exercise):
    """The classic mistakes of `exercise`: (Mistake, ...)."""
    return CATALOGUE.get(exercise.qualname, ())


# --- The catalogue --------------------------------------------------------------------------

# The ways of writing Conv2d's dout_mat, and ConvTranspose2d's dpatches, from dout's axes in the
# wrong order: dout itself (the plain reshape), and each other permutation than inner's (1, 2, 3, 0).
WRONG_ORDERS = [order for order in itertools.permutations(range(4)) if order != (1, 2, 3, 0)]
OUT_OF_ORDER = ("dout", *(f"xp.permute_dims(dout, {order})" for order in WRONG_ORDERS if order != (0, 1, 2, 3)))
# For im2col most orders give a shape it refuses (dout must be an image of channels first): those that can run first.
CHANNELS_FIRST = sorted(OUT_OF_ORDER, key=lambda wrong: "dims(dout, (1," not in wrong)

# col2im written with `=` where windows overlap: the last window wins, the others' terms are lost.
COL2IM_ASSIGNING = '''
def col2im(patches, x_shape, kernel, stride, padding):
    xp = namespace(patches)
    C, H, W, N = x_shape
    H_out, W_out = (conv_output_size(size, kernel, stride, padding) for size in (H, W))
    patches = xp.reshape(patches, (C, kernel, kernel, H_out, W_out, N))
    dx_padded = xp.zeros((C, H + 2 * padding, W + 2 * padding, N), dtype=patches.dtype)
    for i in range(kernel):
        for j in range(kernel):
            dx_padded[window(i, j, stride, H_out, W_out)] = patches[:, i, j, ...]
    return crop(dx_padded, padding)
'''
# A layer's backward that stops before its grads when input_grad is False (the first layer).
RETURNS_EARLY = ("", "if not self.input_grad:\n    return None")
SKIPS_GRADS = ("grads skipped without input_grad",
               "with input_grad False your backward returns before it fills grads: input_grad only spares dx "
               "(the first layer has no input to pass a gradient to), its W and b still learn. Fill grads, "
               "then return None")

# gaussian_nll's reference lines that its mistakes edit, and the section that derives it.
NLL_L = "(squared / (2.0 * var[0]) + 0.5 * x.size * (x_logvar[0] + LOG_2PI)) / divisor"
NLL_DX_HAT = "1.0 / (var[0] * divisor)"
NLL_DX_LOGVAR = "(0.5 * x.size - squared / (2.0 * var)) / divisor"
LEARNED = 'docs/derivations.md, "A decoder that learns its variance"'

CATALOGUE = {
    "numerical_grad": (
        Mistake("one-sided difference",
                "your estimate is a one-sided difference (f(x + h) - f(x)) / h, whose error shrinks only like h: "
                "the centred (f(x + h) - f(x - h)) / 2h errs like h**2",
                (("x_flat[i] = x_i - h", "x_flat[i] = x_i"), ("2 * h", "h"))),
        Mistake("divided by h", "your estimate is twice the derivative: f(x + h) - f(x - h) spans 2h",
                (("2 * h", "h"),)),
        Mistake("x not restored",
                "x is left at x_i - h after each coordinate: put x_flat[i] = x_i back before the next one, "
                "or every later coordinate is measured at the wrong point (and x is changed when you return)",
                (("x_flat[i] = x_i", ""),)),
        Mistake("h ignored",
                "your estimate does not change with h: the h argument was ignored (a step fixed inside the "
                "function). The library passes its own h (check_gradients(f, wrt, analytic, h)): use it",
                (("", "h = 1e-06"),)),
    ),
    "Dense.backward": (
        Mistake("dW transposed",
                "your dW is dout.T @ x, the transpose of dL/dW: dW[i, o] = sum_n x[n, i] dout[n, o], "
                "of W's shape (in, out)",
                (("self.x.T @ dout", "dout.T @ self.x"),)),
        Mistake("dW averaged",
                "your dW is divided by the batch size: the loss already averages over the batch (its gradient "
                "carries the 1/N), so a layer only sums over the rows",
                (("self.x.T @ dout", "self.x.T @ dout / dout.shape[0]"),)),
        Mistake("db averaged",
                "your db is the mean of dout over the batch: b is added to every row, so every row's gradient "
                "reaches it in full: db = sum over n of dout",
                (("xp.sum(dout, axis=0)", "xp.mean(dout, axis=0)"),)),
        Mistake(*SKIPS_GRADS, (RETURNS_EARLY,)),
    ),
    "ReLU.backward": (
        Mistake("passes where x <= 0",
                "your gradient flows where the input was negative and stops where it was positive: the other way "
                "round",
                (("dout * self.slope", "dout * (1.0 - self.slope)"),)),
        Mistake("derivative left out",
                "you return dout unchanged: ReLU's derivative is 0 where x <= 0, so the gradient stops there",
                (("dout * self.slope", "dout"),)),
    ),
    "Sigmoid.backward": (
        Mistake("derivative y",
                "you multiply by y: the sigmoid's derivative is y (1 - y) (y is exp's derivative, not the "
                "sigmoid's)",
                (("dout * self.y * (1.0 - self.y)", "dout * self.y"),)),
    ),
    "Tanh.backward": (
        Mistake("1 - y", "you multiply by 1 - y: tanh's derivative is 1 - tanh(x)**2 = 1 - y**2",
                (("1.0 - self.y * self.y", "1.0 - self.y"),)),
    ),
    "mse": (
        Mistake("missing 1/N",
                "your dx_hat lacks the 1/N: the loss averages over the N images of the batch, and so does its "
                "gradient",
                (("2.0 / divisor", "2.0"),)),
        Mistake("missing 2", "d/dx_hat (x_hat - x)**2 = 2 (x_hat - x): your dx_hat lacks the 2",
                (("2.0 / divisor", "1.0 / divisor"),)),
        Mistake("sign flipped", "your dx_hat points the wrong way: d/dx_hat (x_hat - x)**2 = +2 (x_hat - x)",
                (("2.0 / divisor", "-2.0 / divisor"),)),
    ),
    "bce": (
        Mistake("sign flipped", "your dlogits is x - p: it is p - x, with p = sigmoid(logits)",
                (("sigmoid(logits) - x", "x - sigmoid(logits)"),)),
        Mistake("missing 1/N", "your dlogits lacks the 1/N of averaging over the batch",
                (("dlogits *= 1.0 / divisor", "dlogits *= 1.0"),)),
        Mistake("sigmoid's derivative kept",
                "you multiplied by the sigmoid's derivative p (1 - p): taken from the logits it cancels against "
                "the 1 / (p (1 - p)) of the log, leaving (p - x) / N",
                (("sigmoid(logits) - x", "(sigmoid(logits) - x) * sigmoid(logits) * (1.0 - sigmoid(logits))"),)),
    ),
    "gaussian_kl": (
        Mistake("logvar read as log std",
                "your KL reads logvar as the log of the standard deviation (sigma = exp(logvar)); here logvar is "
                "the log of the variance, sigma**2 = exp(logvar), as the sampler's std = exp(0.5 * logvar) assumes",
                (("xp.exp(logvar)", "xp.exp(2.0 * logvar)"),
                 ("1.0 + logvar - mu * mu - var", "1.0 + 2.0 * logvar - mu * mu - var"),
                 ("(var - 1.0) * (0.5 / divisor)", "(var - 1.0) / divisor"))),
        Mistake("missing 1/2 in dlogvar",
                "d/dlogvar of -(1 + logvar - exp(logvar)) / 2 is (exp(logvar) - 1) / 2: your dlogvar lacks the 1/2",
                (("(var - 1.0) * (0.5 / divisor)", "(var - 1.0) / divisor"),)),
        Mistake("dmu sign flipped", "your dmu is -mu / N: d/dmu of mu**2 / 2 is +mu",
                (("mu / divisor", "-mu / divisor"),)),
    ),
    "gaussian_nll": (
        Mistake("dx_hat over sigma",
                "your dx_hat is divided by sigma, the standard deviation: L's first term is (x - x_hat)**2 / "
                f"(2 sigma**2), so dx_hat is divided by sigma**2 = exp(x_logvar) ({LEARNED}, step 1)",
                ((NLL_DX_HAT, "1.0 / (xp.exp(0.5 * x_logvar[0]) * divisor)"),)),
        Mistake("mse's 2 kept",
                "your dx_hat is twice the right one: the 2 of d/dx_hat (x - x_hat)**2 cancels the 2 of "
                "1 / (2 sigma**2). mse's gradient has its 2 because mse is this loss at sigma**2 = 1/2 "
                f"({LEARNED}, step 1)",
                ((NLL_DX_HAT, "2.0 / (var[0] * divisor)"),)),
        Mistake("missing 1/N",
                "your gradient lacks the 1/N: L averages over the N images of the batch, and so do dx_hat and "
                f"dx_logvar ({LEARNED}, steps 1 and 2)",
                ((NLL_DX_HAT, "1.0 / var[0]"),),
                (((NLL_DX_LOGVAR, "0.5 * x.size - squared / (2.0 * var)"),),
                 ((NLL_DX_HAT, "1.0 / var[0]"), (NLL_DX_LOGVAR, "0.5 * x.size - squared / (2.0 * var)")))),
        Mistake("dx_logvar per pixel",
                "your dx_logvar has a number for each pixel, (N, D): x_logvar is one number that every pixel "
                "shares, so its gradient adds up what every pixel's term gives it, into x_logvar's shape (1,) "
                f"({LEARNED}, step 2)",
                ((NLL_DX_LOGVAR, "(0.5 - diff * diff / (2.0 * var)) / divisor"),)),
        Mistake("dx_logvar sign flipped",
                "your dx_logvar points the wrong way: raising x_logvar costs 1/2 a pixel through the log of the "
                "variance and saves through the 1 / (2 sigma**2) of the squared error, so dx_logvar is positive "
                f"where sigma**2 is above the squared error per pixel ({LEARNED}, step 2)",
                ((NLL_DX_LOGVAR, "(squared / (2.0 * var) - 0.5 * x.size) / divisor"),)),
        Mistake("missing 1/2 in dx_logvar",
                "your dx_logvar takes the log-variance term as x_logvar a pixel: it is x_logvar / 2 (the log of "
                f"sigma), whose derivative is 1/2 a pixel ({LEARNED}, step 2)",
                ((NLL_DX_LOGVAR, "(x.size - squared / (2.0 * var)) / divisor"),)),
        Mistake("missing 1/2 in L's log-variance term",
                "your L counts x_logvar in full for each pixel: -log N(x; x_hat, sigma**2) holds log sigma = "
                f"x_logvar / 2 ({LEARNED}, L as the section opens with it; step 2 for its gradient)",
                ((NLL_L, "(squared / (2.0 * var[0]) + x.size * x_logvar[0] + 0.5 * x.size * LOG_2PI) / divisor"),),
                (((NLL_L, "(squared / (2.0 * var[0]) + x.size * x_logvar[0] + 0.5 * x.size * LOG_2PI) / divisor"),
                  (NLL_DX_LOGVAR, "(x.size - squared / (2.0 * var)) / divisor")),)),
        Mistake("missing log(2 pi) / 2",
                "your L lacks log(2 pi) / 2 a pixel: a constant, so no gradient changes, but without it L is not "
                "-log p(x|z) in nats, which the lab reports and compares with other models' "
                f"({LEARNED}, L as the section opens with it)",
                (("x_logvar[0] + LOG_2PI", "x_logvar[0]"),)),
        Mistake("sigma**2 as exp(x_logvar / 2)",
                "your sigma**2 is exp(x_logvar / 2), which is sigma, the standard deviation: x_logvar is the log "
                f"of the variance, sigma**2 = exp(x_logvar) ({LEARNED}, as the section opens)",
                (("xp.exp(x_logvar)", "xp.exp(0.5 * x_logvar)"),)),
        Mistake("x_logvar read as log std",
                "your loss reads x_logvar as the log of the standard deviation (sigma = exp(x_logvar)); it is the "
                f"log of the variance, sigma**2 = exp(x_logvar) ({LEARNED}, as the section opens)",
                (("xp.exp(x_logvar)", "xp.exp(2.0 * x_logvar)"),
                 (NLL_L, "(squared / (2.0 * var[0]) + x.size * x_logvar[0] + 0.5 * x.size * LOG_2PI) / divisor"),
                 (NLL_DX_LOGVAR, "(x.size - squared / var) / divisor"))),
    ),
    "Adam.update": (
        Mistake("no bias correction",
                "your steps have no bias correction: m and v start at 0 and underestimate the moments in the first "
                "steps; Algorithm 1 divides them by (1 - b1**t) and (1 - b2**t)",
                (("self.lr * (1.0 - b2 ** t) ** 0.5 / (1.0 - b1 ** t)", "self.lr"),
                 ("self.eps * (1.0 - b2 ** t) ** 0.5", "self.eps"))),
        Mistake("eps inside the square root",
                "your eps is inside the square root: Algorithm 1 adds it to sqrt(v_hat)",
                (("xp.sqrt(v) + eps_t", "xp.sqrt(v + eps_t)"),)),
        Mistake("m rebound, not updated",
                "m = ... makes a new array, and the optimiser's own m never changes: update it in place "
                "(m *= b1; m += (1 - b1) * g)",
                (("m *= b1\nm += (1.0 - b1) * g", "m = b1 * m + (1.0 - b1) * g"),)),
    ),
    "AutoEncoder.backward": (
        Mistake("encoder left out",
                "the encoder gets no gradient: decoder.backward returns dL/dz, which encoder.backward takes",
                (("self.encoder.backward(self.decoder.backward(self.recon_loss.backward()))",
                  "self.decoder.backward(self.recon_loss.backward())"),)),
    ),
    "VAE.backward": (
        Mistake("std read as exp(logvar)",
                "your dlogvar is what std = exp(logvar) would give: the sampler uses std = exp(0.5 * logvar), "
                "so d std/d logvar is half of std",
                (("0.5 * self.std", "self.std * self.std"),)),
        Mistake("missing 0.5",
                "dz/dlogvar = eps * d std/dlogvar, and d exp(0.5 logvar)/dlogvar is not std itself: your dlogvar "
                "lacks a factor",
                (("0.5 * self.std", "self.std"),)),
        Mistake("d std/d logvar as 0.5 / std",
                "your d std/d logvar is 0.5 / std, the derivative of log std = 0.5 logvar turned upside down: "
                "std = exp(0.5 logvar) is its own derivative, times 0.5",
                (("0.5 * self.std", "0.5 / self.std"),)),
        Mistake("beta dropped",
                "the KL's gradients enter without beta: the loss is recon + beta * KL",
                (("self.beta * self.dmu_kl", "self.dmu_kl"), ("self.beta * self.dlogvar_kl", "self.dlogvar_kl"))),
        Mistake("beta on the reconstruction term",
                "your beta weighs the reconstruction term, and the KL enters as it is: the loss is recon + beta * KL, "
                "so beta multiplies the KL's gradients and nothing else",
                (("self.recon_loss.backward()", "self.beta * self.recon_loss.backward()"),
                 ("self.beta * self.dmu_kl", "self.dmu_kl"), ("self.beta * self.dlogvar_kl", "self.dlogvar_kl"))),
        Mistake("KL path missing",
                "mu and logvar reach the loss twice, through z and directly through the KL term: add the KL's "
                "gradients",
                (("self.beta * self.dmu_kl", "0.0"), ("self.beta * self.dlogvar_kl", "0.0"))),
        Mistake("reparameterisation path missing",
                "z = mu + std * eps depends on logvar through std: dlogvar needs the path through z as well as "
                "the KL's part",
                (("dz * self.eps * (0.5 * self.std)", "0.0"),)),
        Mistake("one head left out of dh",
                "h feeds both heads, so dL/dh is the sum of what both heads' backward passes return",
                (("dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dlogvar)",
                  "self.logvar_head.backward(dlogvar)\ndh = self.mu_head.backward(dmu)"),)),
    ),
    "Conv2d.backward": (
        Mistake("dout's axes in the wrong order",
                "your dout_mat takes dout's axes in another order than the patches' columns: its rows then mix "
                "images, channels and pixels. The columns of patches are (h, w, n): put dout in the layers' "
                'layout first, (out, H_out, W_out, N), then reshape it to (out, L N) (docs/derivations.md, '
                '"Convolution", step 3)',
                (), tuple((("inner(dout)", wrong),) for wrong in OUT_OF_ORDER)),
        Mistake("dW transposed",
                "your dW is the transpose of dW_mat, (in k k, out), which a reshape to W's shape accepts without "
                'a word, for they have as many entries (docs/derivations.md, "Convolution", step 4)',
                (("dout_mat @ self.patches.T", "self.patches @ dout_mat.T"),)),
        Mistake("dW left a matrix",
                "your dW is dW_mat, (out, in k k): reshape it to W's shape (out, in, k, k), the inverse of the "
                'reshape that made W_mat (docs/derivations.md, "Convolution", step 4)',
                (("xp.reshape(dout_mat @ self.patches.T, W.shape)", "dout_mat @ self.patches.T"),)),
        Mistake("db summed over the channels",
                "your db sums dout_mat over axis 0, its output channels: dout_mat is (out, L N), a row per "
                "channel (in Dense the rows are examples). b[o] is added at every output pixel of every image, "
                'so db[o] sums row o (docs/derivations.md, "Convolution", step 5)',
                (("xp.sum(dout_mat, axis=1)", "xp.sum(dout_mat, axis=0)"),)),
        Mistake("kernel flipped",
                "your kernel is flipped: Conv2d is a cross-correlation (PyTorch's, no flip), so its backward "
                "multiplies by W as forward used it, unflipped (docs/derivations.md, \"Convolution\")",
                (), ((("xp.reshape(W, (self.out_channels, -1))",
                       "xp.reshape(xp.flip(W, axis=(2, 3)), (self.out_channels, -1))"),),
                     (("xp.reshape(dout_mat @ self.patches.T, W.shape)",
                       "xp.flip(xp.reshape(dout_mat @ self.patches.T, W.shape), axis=(2, 3))"),))),
        Mistake("col2im assigning",
                "where windows overlap (kernel 3, stride 2), a pixel of x is read by several windows, and its "
                "gradient is the sum of what each gives back: your col2im assigns (=), so the last window wins. "
                "Add (+=)",
                (("", COL2IM_ASSIGNING),)),
        Mistake("dx left in the layers' layout",
                "your dx is col2im's (in, H, W, N), the layers' own layout: outer() turns it back into the "
                'interface\'s (N, in, H, W), x\'s shape (docs/derivations.md, "Convolution", step 6)',
                (("outer(col2im(dpatches, self.x_shape, self.kernel_size, self.stride, self.padding))",
                  "col2im(dpatches, self.x_shape, self.kernel_size, self.stride, self.padding)"),)),
        Mistake(*SKIPS_GRADS, (RETURNS_EARLY,)),
    ),
    "ConvTranspose2d.backward": (
        Mistake("dout's axes in the wrong order",
                "your dpatches reads dout's axes in another order than the layers' layout: im2col takes "
                "(out, H_out, W_out, N), the image inner(dout) is (docs/derivations.md, \"Convolution\", step 9)",
                (), tuple((("inner(dout)", wrong),) for wrong in CHANNELS_FIRST)),
        Mistake("dW transposed",
                "your dW is the transpose of dW_mat, (out k k, in), which a reshape to W's shape accepts without "
                'a word, for they have as many entries (docs/derivations.md, "Convolution", step 10)',
                (("self.x_mat @ dpatches.T", "dpatches @ self.x_mat.T"),)),
        Mistake("dW left a matrix",
                "your dW is dW_mat, (in, out k k): reshape it to W's shape (in, out, k, k), the inverse of the "
                'reshape that made W_mat (docs/derivations.md, "Convolution", step 10)',
                (("xp.reshape(self.x_mat @ dpatches.T, W.shape)", "self.x_mat @ dpatches.T"),)),
        Mistake("db summed over the batch alone",
                "your db sums dout over axis 0 only, as Dense's does: b[o] is added at every pixel (h, w) of "
                "channel o of every image, so db[o] sums dout[:, o] over the batch and both image axes "
                '(docs/derivations.md, "Convolution", step 10)',
                (("xp.sum(dout, axis=(0, 2, 3))", "xp.sum(dout, axis=0)"),)),
        Mistake("kernel flipped",
                "your kernel is flipped: this layer's forward uses W unflipped, and so does its backward "
                '(docs/derivations.md, "Convolution")',
                (), ((("xp.reshape(W, (self.in_channels, -1))",
                       "xp.reshape(xp.flip(W, axis=(2, 3)), (self.in_channels, -1))"),),
                     (("xp.reshape(self.x_mat @ dpatches.T, W.shape)",
                       "xp.flip(xp.reshape(self.x_mat @ dpatches.T, W.shape), axis=(2, 3))"),))),
        Mistake("dx reshaped, not permuted",
                "your dx is W_mat @ dpatches reshaped straight to (N, in, H, W): a reshape is not a transpose. "
                "Its columns are (h, w, n), the layers' order: reshape it to (in, H, W, N), then outer() it "
                'into (N, in, H, W) (docs/derivations.md, "Convolution", step 11)',
                (("outer(xp.reshape(dx, (self.in_channels, H, W_in, N)))", "xp.reshape(dx, self.x_shape)"),)),
        Mistake("dx left in the layers' layout",
                "your dx is (in, H, W, N), the layers' own layout: outer() turns it back into the interface's "
                '(N, in, H, W), x\'s shape (docs/derivations.md, "Convolution", step 11)',
                (("outer(xp.reshape(dx, (self.in_channels, H, W_in, N)))",
                  "xp.reshape(dx, (self.in_channels, H, W_in, N))"),)),
        Mistake(*SKIPS_GRADS, (RETURNS_EARLY,)),
    ),
}
