// The encoder and the decoder of models/ in plain JavaScript, one image or one code at a time, from the
// weights explorer/page.py embeds: page.js runs them, and the tests load this file alone in node.
//
// Read beside nn/layers.py, nn/conv.py and models/: the same layers, names and formulas (forward only).
// A batch x: (N, D) there is one vector x: (D,) here, so `x @ W` is a loop over W's rows; an image
// (C, H, W) is its numbers in row-major order, and each convolution is the loop of its docstring's
// formula rather than im2col's matrix product. Numbers are float64 here, the weights the model's own:
// float32, or rounded to float16 where explorer/page.py says the page would be too large otherwise.
"use strict";

function bytesOf(base64) {  // base64 text -> Uint8Array
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function numbersOf(base64, dtype) {  // NumPy's little-endian "<f4" or "<f2" bytes -> Float64Array
  const view = new DataView(bytesOf(base64).buffer), size = dtype === "<f2" ? 2 : 4;
  return Float64Array.from({ length: view.byteLength / size }, (_, i) => size === 4
    ? view.getFloat32(4 * i, true) : float16(view.getUint16(2 * i, true)));
}

function float16(bits) {  // sign, 5 exponent bits (bias 15), 10 fraction bits
  const e = (bits >> 10) & 31, f = bits & 1023, sign = bits >> 15 ? -1 : 1;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (e === 0 ? f * 2 ** -24 : (1 + f / 1024) * 2 ** (e - 15));
}

class Dense {
  // y = x @ W + b.   x: (in_features,), W: (in_features, out_features), b: (out_features,)
  constructor(r, W, b) { Object.assign(this, { in_features: r.in_features, out_features: r.out_features, W, b }); }

  forward(x) {
    const { in_features: I, out_features: J, W, b } = this;
    if (x.length !== I) throw new Error(`Dense(${I}, ${J}) expects input of length ${I}, got ${x.length}`);
    const y = Float64Array.from(b);
    for (let i = 0; i < I; i++) for (let j = 0; j < J; j++) y[j] += x[i] * W[i * J + j];
    return y;
  }
}

const sigmoid = (v) => 0.5 * (1.0 + Math.tanh(0.5 * v));  // 1 / (1 + exp(-v)), as nn/layers.py computes it

class Elementwise {  // ReLU, LeakyReLU, Sigmoid, Tanh: y = f(x) for each number
  constructor(f) { this.f = f; }
  forward(x) { return x.map(this.f); }
}

class Reshape {
  // One example to `shape`: its numbers in row-major order do not move, so only their count is checked.
  // AsImages (models/conv.py), rows to (1, H, W) images with no condition, is this too.
  constructor(shape) { this.shape = shape; }

  forward(x) {
    const size = this.shape.reduce((a, b) => a * b, 1);
    if (x.length !== size) throw new Error(`Reshape(${this.shape}) needs ${size} numbers, got ${x.length}`);
    return x;
  }
}

class Convolution {  // what the two share, as in nn/conv.py: the geometry, W and b, and the input's check
  constructor(r, W, b, size) {  // size: an output side from an input side
    Object.assign(this, { C: r.in_channels, O: r.out_channels, k: r.kernel_size, s: r.stride, p: r.padding,
                          H: r.height, W_in: r.width, W, b });
    [this.H_out, this.W_out] = [size(r.height), size(r.width)];
  }

  check(x) {
    const { C, O, H, W_in } = this;
    if (x.length !== C * H * W_in) {
      throw new Error(`${this.constructor.name}(${C}, ${O}) expects ${C}x${H}x${W_in} numbers, got ${x.length}`);
    }
  }
}

class Conv2d extends Convolution {
  // y[o, h, w] = b[o] + sum_{c, i, j} W[o, c, i, j] x_padded[c, s h + i, s w + j]: a loop over output pixels.
  // x: (C, H, W_in), W: (O, C, k, k), y: (O, H_out, W_out), H_out = (H + 2 p - k) // s + 1 (conv_output_size)
  constructor(r, W, b) { super(r, W, b, (n) => Math.floor((n + 2 * r.padding - r.kernel_size) / r.stride) + 1); }

  forward(x) {
    this.check(x);
    const { C, O, k, s, p, H, W_in, H_out, W_out, W, b } = this, y = new Float64Array(O * H_out * W_out);
    for (let o = 0; o < O; o++) for (let h = 0; h < H_out; h++) for (let w = 0; w < W_out; w++) {
      let sum = b[o];
      for (let c = 0; c < C; c++) for (let i = 0; i < k; i++) {
        const row = s * h + i - p;  // x_padded's row s h + i is x's row s h + i - p, zero outside x
        if (row < 0 || row >= H) continue;
        for (let j = 0; j < k; j++) {
          const col = s * w + j - p;
          if (col >= 0 && col < W_in) sum += W[((o * C + c) * k + i) * k + j] * x[(c * H + row) * W_in + col];
        }
      }
      y[(o * H_out + h) * W_out + w] = sum;
    }
    return y;
  }
}

class ConvTranspose2d extends Convolution {
  // Every input pixel stamps its k x k kernel, times its value, `stride` apart, the stamps adding where they
  // overlap; the padding's frame is then cropped and b added (the adjoint of Conv2d):
  //   y_padded[o, s h + i, s w + j] += sum_c W[c, o, i, j] x[c, h, w],   y = crop(y_padded) + b[o]
  // x: (C, H, W_in), W: (C, O, k, k), y: (O, H_out, W_out), H_out = (H - 1) s - 2 p + k (conv_transpose_output_size)
  constructor(r, W, b) { super(r, W, b, (n) => (n - 1) * r.stride - 2 * r.padding + r.kernel_size); }

  forward(x) {
    this.check(x);
    const { C, O, k, s, p, H, W_in, H_out, W_out, W, b } = this;
    const Hp = H_out + 2 * p, Wp = W_out + 2 * p, y_padded = new Float64Array(O * Hp * Wp);
    for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W_in; w++) {
      const v = x[(c * H + h) * W_in + w];
      for (let o = 0; o < O; o++) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
        y_padded[(o * Hp + s * h + i) * Wp + s * w + j] += v * W[((c * O + o) * k + i) * k + j];
      }
    }
    const y = new Float64Array(O * H_out * W_out);  // crop(y_padded) + b[o]
    for (let o = 0; o < O; o++) for (let r = 0; r < H_out; r++) for (let q = 0; q < W_out; q++) {
      y[(o * H_out + r) * W_out + q] = y_padded[(o * Hp + r + p) * Wp + q + p] + b[o];
    }
    return y;
  }
}

class Sequential {  // layers applied in order
  constructor(layers) { this.layers = layers; }
  forward(x) { return this.layers.reduce((v, layer) => layer.forward(v), x); }
}

// One builder per layer type of explorer/page.py's `layer_record`; `numbers` reads an embedded weight array.
const LAYERS = {
  Dense: (r, numbers) => new Dense(r, numbers(r.W), numbers(r.b)),
  Conv2d: (r, numbers) => new Conv2d(r, numbers(r.W), numbers(r.b)),
  ConvTranspose2d: (r, numbers) => new ConvTranspose2d(r, numbers(r.W), numbers(r.b)),
  Reshape: (r) => new Reshape(r.shape),
  ReLU: () => new Elementwise((v) => Math.max(v, 0.0)),
  LeakyReLU: (r) => new Elementwise((v) => (v > 0 ? v : r.alpha * v)),
  Sigmoid: () => new Elementwise(sigmoid),
  Tanh: () => new Elementwise(Math.tanh),
};

function loadModel(M) {
  // The model of the page's JSON (explorer/page.py, `page_data`): models/vae.py's or models/autoencoder.py's
  // encode, decode and loss terms, for one image x: (D,) in [0, 1] or one code z: (J,).
  const build = (r) => LAYERS[r.type](r, (base64) => numbersOf(base64, M.weights));
  const encoder = new Sequential(M.encoder.map(build)), decoder = new Sequential(M.decoder.map(build));
  const [mu_head, logvar_head] = M.logvar ? [build(M.mu), build(M.logvar)] : [];  // the AE's code is encoder's output
  const linear = M.output === "identity";
  const x_hat_of = (logits) => (linear ? logits : logits.map(sigmoid));
  return {
    encode(x) {  // {mu, logvar} of q(z|x); the AE's {mu}: its code
      const h = encoder.forward(Float64Array.from(x));
      return mu_head ? { mu: Array.from(mu_head.forward(h)), logvar: Array.from(logvar_head.forward(h)) }
                     : { mu: Array.from(h) };
    },
    decode: (z) => Array.from(x_hat_of(decoder.forward(Float64Array.from(z)))),
    recon(z, x) {  // the training's reconstruction error of x decoded from z: nn/losses.py's mse, bce or
      // gaussian_nll (whose variance exp(x_logvar) the decoder learned), N = 1
      const logits = decoder.forward(Float64Array.from(z)), x_hat = x_hat_of(logits);
      let sum = 0;
      for (let d = 0; d < x.length; d++) {
        const l = logits[d];
        sum += M.loss === "bce" ? Math.max(l, 0) - l * x[d] + Math.log1p(Math.exp(-Math.abs(l)))  // bce_terms
                                : (x_hat[d] - x[d]) ** 2;
      }
      if (M.loss !== "gaussian") return sum;
      return sum / (2 * Math.exp(M.x_logvar)) + 0.5 * x.length * (M.x_logvar + Math.log(2 * Math.PI));
    },
    kl: (mu, logvar) => mu.reduce((sum, m, j) => sum - 0.5 * (1 + logvar[j] - m * m - Math.exp(logvar[j])), 0),
  };
}
