// The latent-space explorer: the decoder of models/ run in plain JavaScript, one code at a time,
// and the page around it (lab/explorer.py fills lab/explorer.html with this file and the model).
//
// Part 1, the decoder, reads line by line beside nn/layers.py, nn/conv.py and models/base.py:
// the same layers with the same names and formulas. A batch x: (N, D) there is one vector x: (D,)
// here, so `x @ W` is a loop over W's rows; a batch of images (N, C, H, W) is one image (C, H, W),
// its numbers in row-major order, and a transposed convolution is the loop of its docstring's
// formula rather than a matrix product and col2im. Numbers are float64 in JS, the weights the model's own
// float32 values: decode(z) equals NumPy's model.decode(z) to about 1e-6 (tests/test_explorer.py).
//
// Part 2, the page: the test set's codes, the pointer, the pins and the images it shows.
"use strict";

// ------------------------------------------------------------------ reading the embedded data

function bytesOf(base64) {
  // base64 text -> Uint8Array of its bytes
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function float32sOf(base64) {
  // base64 of little-endian float32 (NumPy's '<f4' bytes) -> Float32Array; DataView reads them as
  // little-endian whatever the machine's own byte order
  const bytes = bytesOf(base64);
  const view = new DataView(bytes.buffer);
  const values = new Float32Array(bytes.length / 4);
  for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
  return values;
}

// ------------------------------------------------------------------ Part 1: nn/layers.py

class Dense {
  // Fully connected layer, y = x @ W + b.
  // x: (in_features,), W: (in_features, out_features) row-major, b: (out_features,), y: (out_features,)
  constructor(in_features, out_features, W, b) {
    this.in_features = in_features;
    this.out_features = out_features;
    this.params = { W: W, b: b };
  }

  forward(x) {
    const W = this.params.W, b = this.params.b;
    if (x.length !== this.in_features) {
      throw new Error(`Dense(${this.in_features}, ${this.out_features}) expects input of length ` +
                      `${this.in_features}, got ${x.length}`);
    }
    const y = new Float64Array(this.out_features);  // y = x @ W: row i of W, weighted by x[i]
    for (let i = 0; i < this.in_features; i++) {
      const xi = x[i], row = i * this.out_features;
      for (let j = 0; j < this.out_features; j++) y[j] += xi * W[row + j];
    }
    for (let j = 0; j < this.out_features; j++) y[j] += b[j];  // y += b
    return y;
  }
}

class ReLU {
  // y = max(x, 0), elementwise
  forward(x) {
    return x.map((v) => Math.max(v, 0.0));
  }
}

class LeakyReLU {
  // y = x if x > 0 else alpha * x
  constructor(alpha) {
    this.alpha = alpha;
  }

  forward(x) {
    return x.map((v) => (v > 0 ? v : this.alpha * v));
  }
}

function sigmoid(x) {
  // 1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2, as nn/layers.py does
  return 0.5 * (1.0 + Math.tanh(0.5 * x));
}

class Sigmoid {
  // y = sigmoid(x)
  forward(x) {
    return x.map(sigmoid);
  }
}

class Tanh {
  // y = tanh(x)
  forward(x) {
    return x.map(Math.tanh);
  }
}

class Sequential {
  // Layers applied in order
  constructor(layers) {
    this.layers = layers;
  }

  forward(x) {
    for (const layer of this.layers) x = layer.forward(x);
    return x;
  }
}

// ------------------------------------------------------------------ Part 1: nn/conv.py

class Reshape {
  // One example reshaped to `shape`: its numbers, in row-major order, are the same whatever its
  // shape, so a flat vector passes through unchanged; only their count is checked.
  constructor(shape) {
    this.shape = shape;
  }

  forward(x) {
    const size = this.shape.reduce((a, b) => a * b, 1);
    if (x.length !== size) throw new Error(`Reshape(${this.shape}) needs ${size} numbers, got ${x.length}`);
    return x;
  }
}

class ConvTranspose2d {
  // Transposed convolution of one image: every input pixel stamps its k x k kernel, times its
  // value, onto the output, `stride` apart, the stamps adding where they overlap; then the
  // padding's frame is cropped and b added:
  //   y_padded[o, s h + i, s w + j] += sum_c W[c, o, i, j] x[c, h, w],   y = crop(y_padded) + b[o]
  // x: (in_channels, H, W), W: (in_channels, out_channels, k, k), b: (out_channels,), all row-major;
  // y: (out_channels, H_out, W_out), H_out = (H - 1) stride - 2 padding + k (conv_transpose_output_size)
  constructor(in_channels, out_channels, kernel_size, stride, padding, H, W_in, W, b) {
    Object.assign(this, { in_channels, out_channels, kernel_size, stride, padding, H, W_in });
    this.H_out = (H - 1) * stride - 2 * padding + kernel_size;
    this.W_out = (W_in - 1) * stride - 2 * padding + kernel_size;
    this.params = { W: W, b: b };
  }

  forward(x) {
    const { in_channels: C, out_channels: O, kernel_size: k, stride: s, padding: p, H, W_in, H_out, W_out } = this;
    const W = this.params.W, b = this.params.b;
    if (x.length !== C * H * W_in) {
      throw new Error(`ConvTranspose2d(${C}, ${O}) expects ${C}x${H}x${W_in} numbers, got ${x.length}`);
    }
    const Hp = H_out + 2 * p, Wp = W_out + 2 * p;  // y_padded: (O, Hp, Wp)
    const y_padded = new Float64Array(O * Hp * Wp);
    for (let c = 0; c < C; c++) {
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W_in; w++) {
          const v = x[(c * H + h) * W_in + w];  // stamp W[c] times v at (s h, s w)
          for (let o = 0; o < O; o++) {
            for (let i = 0; i < k; i++) {
              const row = (o * Hp + s * h + i) * Wp + s * w, kernel = ((c * O + o) * k + i) * k;
              for (let j = 0; j < k; j++) y_padded[row + j] += v * W[kernel + j];
            }
          }
        }
      }
    }
    const y = new Float64Array(O * H_out * W_out);  // crop(y_padded) + b[o]
    for (let o = 0; o < O; o++) {
      for (let r = 0; r < H_out; r++) {
        for (let q = 0; q < W_out; q++) y[(o * H_out + r) * W_out + q] = y_padded[(o * Hp + r + p) * Wp + q + p] + b[o];
      }
    }
    return y;
  }
}

// ------------------------------------------------------------------ Part 1: models/base.py

class Reconstruction {
  // The decoder's output unit: x_hat = sigmoid(logits), or x_hat = logits when `linear`
  constructor(linear) {
    this.linear = linear;
  }

  output(logits) {
    return this.linear ? logits : logits.map(sigmoid);
  }
}

// One builder per layer type of the embedded architecture (lab/explorer.py, `layer_record`).
const LAYERS = {
  Dense: (r) => new Dense(r.in_features, r.out_features, float32sOf(r.W), float32sOf(r.b)),
  ReLU: () => new ReLU(),
  LeakyReLU: (r) => new LeakyReLU(r.alpha),
  Sigmoid: () => new Sigmoid(),
  Tanh: () => new Tanh(),
  Reshape: (r) => new Reshape(r.shape),
  ConvTranspose2d: (r) => new ConvTranspose2d(r.in_channels, r.out_channels, r.kernel_size, r.stride, r.padding,
                                              r.height, r.width, float32sOf(r.W), float32sOf(r.b)),
};

const MODEL = JSON.parse(document.getElementById("model").textContent);
const decoder = new Sequential(MODEL.decoder.map((r) => LAYERS[r.type](r)));
const recon_loss = new Reconstruction(MODEL.output === "identity");

function decode(z) {
  // x_hat: the image at the code z = [z1, z2], pixel values (in [0, 1] but for a linear model's),
  // row-major: models/vae.py and models/autoencoder.py, decode = recon_loss.output(decoder.forward(z))
  return Array.from(recon_loss.output(decoder.forward(Float64Array.from(z))));
}

// ------------------------------------------------------------------ Part 2: the page

function startPage() {
  const [H, W] = MODEL.image_shape;
  const codes = float32sOf(MODEL.codes);  // (n, 2) row-major: z1, z2 of each test image
  const labels = bytesOf(MODEL.labels);  // (n,) class of each test image
  const n = labels.length;
  const shown = MODEL.images.index;  // the test images whose pixels are embedded, by index
  const pixels = bytesOf(MODEL.images.pixels);  // (shown.length, H * W) uint8, pixels * scale in [0, 1]
  const plane = document.getElementById("plane");
  const ctx = plane.getContext("2d");
  const state = { z: [0, 0], pins: [] };

  // The view: the square of the lab's figures and (nearly) all the codes, with equal scales on both axes.
  const view = (() => {
    const sorted = (k) => Array.from({ length: n }, (_, i) => codes[2 * i + k]).sort((a, b) => a - b);
    const span = [0, 1].map((k) => {
      const s = sorted(k), q = (p) => s[Math.min(n - 1, Math.floor(p * n))];
      const sq = MODEL.square[k];
      return [Math.min(sq[0], q(0.001)), Math.max(sq[1], q(0.999))];
    });
    const half = 0.53 * Math.max(span[0][1] - span[0][0], span[1][1] - span[1][0]);
    const centre = span.map(([lo, hi]) => (lo + hi) / 2);
    return { z1: [centre[0] - half, centre[0] + half], z2: [centre[1] - half, centre[1] + half] };
  })();
  const toPx = (z) => [(z[0] - view.z1[0]) / (view.z1[1] - view.z1[0]) * plane.width,
                       (view.z2[1] - z[1]) / (view.z2[1] - view.z2[0]) * plane.height];
  const toCode = (px, py) => [view.z1[0] + px / plane.width * (view.z1[1] - view.z1[0]),
                              view.z2[1] - py / plane.height * (view.z2[1] - view.z2[0])];

  // The still part of the plane, drawn once: axes, the square, the prior's circles, the codes.
  const still = document.createElement("canvas");
  still.width = plane.width;
  still.height = plane.height;
  (() => {
    const c = still.getContext("2d");
    c.fillStyle = "#fff";
    c.fillRect(0, 0, still.width, still.height);
    const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100].find((s) => (view.z1[1] - view.z1[0]) / s <= 12) || 200;
    c.font = "11px sans-serif";
    c.fillStyle = "#888";
    const ticks = (range) => Array.from({ length: Math.floor(range[1] / step) - Math.ceil(range[0] / step) + 1 },
                                        (_, k) => Number(((Math.ceil(range[0] / step) + k) * step).toFixed(1)));
    for (const t of ticks(view.z1)) {  // a vertical line at z1 = t
      const x = toPx([t, 0])[0];
      c.strokeStyle = t === 0 ? "#bbb" : "#eee";
      c.beginPath(); c.moveTo(x, 0); c.lineTo(x, still.height); c.stroke();
      c.fillText(String(t), x + 2, still.height - 4);
    }
    for (const t of ticks(view.z2)) {  // a horizontal line at z2 = t
      const y = toPx([0, t])[1];
      c.strokeStyle = t === 0 ? "#bbb" : "#eee";
      c.beginPath(); c.moveTo(0, y); c.lineTo(still.width, y); c.stroke();
      c.fillText(String(t), 2, y - 2);
    }
    c.fillText("z1 →", still.width - 34, still.height - 16);
    c.fillText("z2 ↑", 22, 12);
    const [a, b] = [toPx([MODEL.square[0][0], MODEL.square[1][1]]), toPx([MODEL.square[0][1], MODEL.square[1][0]])];
    c.strokeStyle = "#555";
    c.strokeRect(a[0], a[1], b[0] - a[0], b[1] - a[1]);
    c.fillStyle = "#555";
    c.fillText(MODEL.square_label, a[0] + 3, a[1] + 12);
    if (MODEL.prior) {
      const [ox, oy] = toPx([0, 0]);
      c.setLineDash([5, 4]);
      for (const r of [1, 2, 3]) {
        const radius = toPx([r, 0])[0] - ox;
        c.beginPath(); c.arc(ox, oy, radius, 0, 2 * Math.PI); c.stroke();
        c.fillText(`${r}σ`, ox + radius * 0.71 + 2, oy - radius * 0.71 - 2);
      }
      c.setLineDash([]);
    }
    // One pass in a shuffled order, not one per class: the class drawn last would hide the others.
    const order = Array.from({ length: n }, (_, i) => i);
    let seed = 12345;
    for (let i = n - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const j = seed % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    c.globalAlpha = 0.55;
    for (const i of order) {
      const [x, y] = toPx([codes[2 * i], codes[2 * i + 1]]);
      c.fillStyle = MODEL.colours[labels[i]];
      c.fillRect(x - 1.25, y - 1.25, 2.5, 2.5);
    }
    c.globalAlpha = 1;
  })();

  function drawImage(canvas, image, scale) {
    // image: H * W values, row-major; drawn gray, clipped to [0, 1]
    const c = canvas.getContext("2d");
    const data = c.createImageData(W, H);
    for (let p = 0; p < H * W; p++) {
      const gray = Math.round(255 * Math.min(1, Math.max(0, image[p] * scale)));
      data.data.set([gray, gray, gray, 255], 4 * p);
    }
    c.putImageData(data, 0, 0);
  }

  function nearestShown(z) {
    // The embedded test image whose code is nearest z: [its place in `shown`, distance]
    let best = -1, bestD2 = Infinity;
    for (let s = 0; s < shown.length; s++) {
      const i = shown[s], d1 = codes[2 * i] - z[0], d2 = codes[2 * i + 1] - z[1];
      if (d1 * d1 + d2 * d2 < bestD2) { best = s; bestD2 = d1 * d1 + d2 * d2; }
    }
    return [best, Math.sqrt(bestD2)];
  }

  const line = (a, b, steps) => Array.from({ length: steps },
                                           (_, k) => [0, 1].map((d) => a[d] + (b[d] - a[d]) * k / (steps - 1)));

  function drawPlane() {
    ctx.drawImage(still, 0, 0);
    const pins = state.pins;
    if (pins.length >= 2) {
      const a = toPx(pins[pins.length - 2]), b = toPx(pins[pins.length - 1]);
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
      for (const z of line(pins[pins.length - 2], pins[pins.length - 1], MODEL.strip_steps)) {
        const [x, y] = toPx(z);
        ctx.fillStyle = "#000";
        ctx.fillRect(x - 2, y - 2, 4, 4);
      }
    }
    pins.forEach((z, k) => {
      const [x, y] = toPx(z);
      ctx.fillStyle = "#fff"; ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      ctx.fillStyle = "#000"; ctx.font = "bold 10px sans-serif"; ctx.textAlign = "center";
      ctx.fillText(String(k + 1), x, y + 3.5);
      ctx.textAlign = "start";
    });
    const [x, y] = toPx(state.z);
    ctx.strokeStyle = "#d00"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(x, y, 9, 0, 2 * Math.PI); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(x - 14, y); ctx.lineTo(x + 14, y); ctx.moveTo(x, y - 14); ctx.lineTo(x, y + 14);
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  function drawStrip() {
    const strip = document.getElementById("strip");
    strip.replaceChildren();
    const pins = state.pins;
    document.getElementById("strip-caption").textContent = pins.length < 2
      ? "Click two points of the plane: the straight line between the last two pins, decoded, appears here."
      : `From pin ${pins.length - 1} (${fmt(pins[pins.length - 2])}) to pin ${pins.length} ` +
        `(${fmt(pins[pins.length - 1])}): ${MODEL.strip_steps} codes on the straight line, decoded.`;
    if (pins.length < 2) return;
    for (const z of line(pins[pins.length - 2], pins[pins.length - 1], MODEL.strip_steps)) {
      const canvas = document.createElement("canvas");
      canvas.width = W; canvas.height = H; canvas.title = `z = (${fmt(z)})`;
      drawImage(canvas, decode(z), 1);
      strip.appendChild(canvas);
    }
  }

  const fmt = (z) => z.map((v) => v.toFixed(2)).join(", ");

  function show(z) {
    // Everything that follows the pointer: the decoded image, the nearest test image, the marks.
    state.z = z;
    const x_hat = decode(z);
    const decoded = document.getElementById("decoded");
    drawImage(decoded, x_hat, 1);
    document.getElementById("decoded-caption").textContent = `decoded at z = (${fmt(z)})`;
    const [s, distance] = nearestShown(z);
    const nearest = document.getElementById("nearest");
    if (s >= 0) {
      drawImage(nearest, pixels.subarray(s * H * W, (s + 1) * H * W), MODEL.images.scale);
      document.getElementById("nearest-caption").textContent =
        `nearest test image: #${shown[s]}, a ${MODEL.class_names[labels[shown[s]]]}, ` +
        `its code ${distance.toFixed(2)} away`;
    }
    drawPlane();
    // What the page drew, read back from the canvas: for tests/test_explorer.py and the curious.
    const drawn = decoded.getContext("2d").getImageData(0, 0, W, H).data.filter((_, k) => k % 4 === 0);
    const rect = decoded.getBoundingClientRect();
    document.getElementById("drawn").textContent = JSON.stringify({
      z: z, gray: Array.from(drawn),
      rect: { left: rect.left, top: rect.top, width: rect.width, height: rect.height },
    });
  }

  function readFragment() {
    // explorer.html#z=0.5,-1.2&pins=0,0;1.5,-2: the pointer's code and the pins
    const fields = new URLSearchParams(location.hash.slice(1));
    const pair = (text) => {
      const z = (text || "").split(",").map(Number);
      return z.length === 2 && z.every(Number.isFinite) ? z : null;
    };
    state.pins = (fields.get("pins") || "").split(";").map(pair).filter((z) => z);
    drawStrip();
    show(pair(fields.get("z")) || [0, 0]);
  }

  function writeFragment() {
    const pins = state.pins.map((z) => z.map((v) => v.toFixed(3)).join(",")).join(";");
    const hash = `#z=${state.z.map((v) => v.toFixed(3)).join(",")}` + (pins ? `&pins=${pins}` : "");
    try { history.replaceState(null, "", hash); } catch (err) { /* some browsers refuse it for file:// */ }
  }

  const codeAt = (event) => {
    const r = plane.getBoundingClientRect();
    return toCode((event.clientX - r.left) * plane.width / r.width, (event.clientY - r.top) * plane.height / r.height);
  };
  plane.addEventListener("pointermove", (event) => show(codeAt(event)));
  plane.addEventListener("click", (event) => {
    state.pins.push(codeAt(event));
    show(state.pins[state.pins.length - 1]);
    drawStrip();
    writeFragment();
  });
  document.getElementById("clear").addEventListener("click", () => {
    state.pins = [];
    drawStrip();
    show(state.z);
    writeFragment();
  });
  window.addEventListener("hashchange", readFragment);

  const legend = document.getElementById("legend");
  MODEL.class_names.forEach((name, y) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = MODEL.colours[y];
    item.append(swatch, name === String(y) ? name : `${y} ${name}`);
    legend.appendChild(item);
  });
  for (const id of ["decoded", "nearest"]) {
    const canvas = document.getElementById(id);
    canvas.width = W; canvas.height = H;
  }
  readFragment();
}

if (typeof window !== "undefined") startPage();  // in node (the tests) only Part 1 runs
