// The page of explorer/page.html around model.js: an image, picked among the embedded test images or
// drawn, its code from the encoder (a VAE's q(z|x): mu and std), the reparameterisation z = mu + std * eps,
// and the decoder at any code: under the pointer on the plane of a 2-D code, or a slider per dimension.
"use strict";

const MODEL = JSON.parse(document.getElementById("model").textContent);
const model = loadModel(MODEL);
function encode(pixels) { return model.encode(pixels); }  // {mu, logvar} (the AE: {mu}) of one image in [0, 1]
function decode(z) { return model.decode(z); }  // the image of the code z, row-major

const $ = (id) => document.getElementById(id);
const [H, W] = MODEL.image_shape, D = H * W, J = MODEL.latent_dim, VAE = MODEL.logvar !== null;
const shown = MODEL.images.index, stored = bytesOf(MODEL.images.pixels), labels = bytesOf(MODEL.labels);
const codes = MODEL.codes && numbersOf(MODEL.codes, "<f4");  // (n, 2) row-major: a 2-D code's test codes
const ELLIPSE = "#7800dc";  // q(z|x) on the plane: in no class's colour
const fmt = (v) => Array.from(v, (a) => a.toFixed(2)).join(", ");
// What is shown: the image x (D pixels in [0, 1]), its test index (null when drawn), its code q = encode(x),
// the noise eps of the last draw (null: none yet) and the code z decoded under the pointer or the sliders.
const state = { x: null, index: null, q: null, eps: null, z: null };
const stdOf = (q) => q.logvar.map((l) => Math.exp(0.5 * l));  // std = exp(0.5 * logvar)
const sampleOf = (q, eps) => q.mu.map((m, j) => m + stdOf(q)[j] * eps[j]);  // z = mu + std * eps
const gaussian = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());

function drawImage(canvas, image) {  // D values, row-major, drawn grey, clipped to [0, 1]
  const c = canvas.getContext("2d"), data = c.createImageData(W, H);
  for (let p = 0; p < D; p++) {
    const grey = Math.round(255 * Math.min(1, Math.max(0, image[p])));
    data.data.set([grey, grey, grey, 255], 4 * p);
  }
  c.putImageData(data, 0, 0);
}

function setImage(x, index) {  // a new image: encode it, and decode at its mu
  Object.assign(state, { x, index, q: encode(x), eps: null });
  state.z = state.q.mu.slice();
  show();
}

const pick = (s) => setImage(Array.from(stored.subarray(s * D, (s + 1) * D), (v) => v * MODEL.images.scale), shown[s]);

function stroke(points) {  // paint a soft round brush along the lines between points [row, col], in pixels
  const radius = Math.max(0.7, Math.max(H, W) / 20);
  points.forEach((p, k) => {
    const o = points[Math.max(0, k - 1)], steps = Math.ceil(4 * Math.hypot(p[0] - o[0], p[1] - o[1])) || 1;
    for (let t = 1; t <= steps; t++) {
      const row = o[0] + (p[0] - o[0]) * t / steps, col = o[1] + (p[1] - o[1]) * t / steps;
      for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) {
        const d = Math.hypot(r + 0.5 - row, c + 0.5 - col) / radius;
        state.x[r * W + c] = Math.max(state.x[r * W + c], Math.min(1, Math.max(0, 1.5 - d)));
      }
    }
  });
  setImage(state.x, null);
}

// ------------------------------------------------------------------ a 2-D code: the plane

const plane = $("plane"), ctx = plane.getContext("2d");
const view = (() => {  // the square of the lab's figures and (nearly) all the codes, equal scales on both axes
  if (J !== 2) return null;
  const n = labels.length, span = [0, 1].map((k) => {
    const s = Array.from({ length: n }, (_, i) => codes[2 * i + k]).sort((a, b) => a - b);
    return [Math.min(MODEL.square[k][0], s[Math.floor(0.001 * n)]),
            Math.max(MODEL.square[k][1], s[Math.floor(0.999 * n)])];
  });
  const half = 0.53 * Math.max(span[0][1] - span[0][0], span[1][1] - span[1][0]);
  return span.map(([lo, hi]) => [(lo + hi) / 2 - half, (lo + hi) / 2 + half]);  // [z1 range, z2 range]
})();
const unit = () => plane.width / (view[0][1] - view[0][0]);  // pixels per unit of z
const toPx = (z) => [(z[0] - view[0][0]) * unit(), (view[1][1] - z[1]) * unit()];
const toCode = (px, py) => [view[0][0] + px / unit(), view[1][1] - py / unit()];

const still = document.createElement("canvas");  // axes, the square, the prior's circles, the codes: drawn once
function drawStill() {
  Object.assign(still, { width: plane.width, height: plane.height });
  const c = still.getContext("2d");
  const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100].find((s) => (view[0][1] - view[0][0]) / s <= 12) || 200;
  c.fillStyle = "#fff"; c.fillRect(0, 0, still.width, still.height);
  c.font = "11px sans-serif"; c.fillStyle = "#888";
  const [lo, hi] = [Math.min(view[0][0], view[1][0]), Math.max(view[0][1], view[1][1])];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) {  // z1 = t and z2 = t
    const [x, y] = toPx([t, t]), label = String(Number(t.toFixed(1)));
    c.strokeStyle = Math.abs(t) < 1e-9 ? "#bbb" : "#eee";
    c.beginPath(); c.moveTo(x, 0); c.lineTo(x, still.height); c.moveTo(0, y); c.lineTo(still.width, y); c.stroke();
    c.fillText(label, x + 2, still.height - 4); c.fillText(label, 2, y - 2);
  }
  c.fillText("z1 →", still.width - 34, still.height - 16); c.fillText("z2 ↑", 22, 12);
  const [a, b] = [toPx([MODEL.square[0][0], MODEL.square[1][1]]), toPx([MODEL.square[0][1], MODEL.square[1][0]])];
  c.strokeStyle = c.fillStyle = "#555";
  c.strokeRect(a[0], a[1], b[0] - a[0], b[1] - a[1]); c.fillText(MODEL.square_label, a[0] + 3, a[1] + 12);
  if (VAE) {  // the prior N(0, I) at 1, 2 and 3 sigma
    const [ox, oy] = toPx([0, 0]);
    c.setLineDash([5, 4]);
    for (const r of [1, 2, 3]) {
      c.beginPath(); c.arc(ox, oy, r * unit(), 0, 2 * Math.PI); c.stroke();
      c.fillText(`${r}σ`, ox + r * unit() * 0.71 + 2, oy - r * unit() * 0.71 - 2);
    }
    c.setLineDash([]);
  }
  c.globalAlpha = 0.55;  // in a shuffled order, not class by class: the class drawn last would hide the others
  const order = Array.from(labels, (_, i) => i);
  for (let i = order.length - 1, seed = 12345; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (const i of order) {
    const [x, y] = toPx([codes[2 * i], codes[2 * i + 1]]);
    c.fillStyle = MODEL.colours[labels[i]];
    c.fillRect(x - 1.25, y - 1.25, 2.5, 2.5);
  }
  c.globalAlpha = 1;
}

function drawPlane() {  // the codes; the image's mu (and the ellipses of mu +- 1 and 2 std); the draw; the pointer
  ctx.drawImage(still, 0, 0);
  const [mx, my] = toPx(state.q.mu);
  ctx.strokeStyle = ctx.fillStyle = ELLIPSE; ctx.lineWidth = 2.5;
  if (VAE) {
    const std = stdOf(state.q);
    for (const r of [1, 2]) {
      ctx.beginPath(); ctx.ellipse(mx, my, r * std[0] * unit(), r * std[1] * unit(), 0, 0, 2 * Math.PI); ctx.stroke();
    }
  }
  ctx.beginPath(); ctx.arc(mx, my, 3.5, 0, 2 * Math.PI); ctx.fill();
  if (state.eps) {
    const [sx, sy] = toPx(sampleOf(state.q, state.eps));
    ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(mx, my); ctx.lineTo(sx, sy); ctx.stroke();
    ctx.fillStyle = "#000"; ctx.fillRect(sx - 3.5, sy - 3.5, 7, 7);
  }
  const [x, y] = toPx(state.z);
  ctx.strokeStyle = "#d00"; ctx.lineWidth = 2;
  ctx.beginPath(); ctx.arc(x, y, 9, 0, 2 * Math.PI); ctx.moveTo(x - 14, y); ctx.lineTo(x + 14, y);
  ctx.moveTo(x, y - 14); ctx.lineTo(x, y + 14); ctx.stroke();
}

// ------------------------------------------------------------------ any other size: a bar and a slider per dimension

if (J !== 2) {
  $("dims").append(Object.assign(document.createElement("p"), { className: "hint", textContent: VAE
    ? "Grey: the prior's ±1; purple: q(z|x)'s μ ± σ (light: ± 2σ); black: μ and the draw; red: the z decoded."
    : "Black: the code; red: the z decoded." }));
}
const rows = J === 2 ? [] : MODEL.order.map((j, rank) => {  // by KL (the AE's, by variance), largest first
  const [row, bar, slider] = ["div", "canvas", "input"].map((tag) => document.createElement(tag));
  const [lo, hi] = MODEL.extent[j];
  Object.assign(bar, { width: 400, height: 16 });
  Object.assign(slider, { type: "range", min: lo, max: hi, step: (hi - lo) / 1000 });
  slider.addEventListener("input", () => { state.z[j] = Number(slider.value); show(); });
  slider.addEventListener("change", remember);
  row.className = "dim";
  row.append(`z${j + 1}` + (VAE ? `, KL ${MODEL.kl[j].toFixed(2)}` : ""), bar, slider);
  if (rank === 10) $("dims").append(Object.assign(document.createElement("details"), { id: "more" }));
  (rank < 10 ? $("dims") : $("more")).append(row);
  return { j, bar, slider, px: (v) => 8 + (v - lo) / (hi - lo) * (bar.width - 16) };  // the thumb's travel
});

function drawBars() {  // above, the prior's mu +- std (grey); below, q(z|x)'s mu +- 1 and 2 std; the z decoded in red
  for (const { j, bar, slider, px } of rows) {
    const c = bar.getContext("2d"), mu = state.q.mu[j], band = (a, b, y, h) => c.fillRect(px(a), y, px(b) - px(a), h);
    c.clearRect(0, 0, bar.width, bar.height);
    c.fillStyle = "#eee"; band(...MODEL.extent[j], 7, 2);
    if (VAE) {
      const std = stdOf(state.q)[j];
      c.fillStyle = "#bbb"; band(-1, 1, 1, 5);
      c.fillStyle = "#d9c2f5"; band(mu - 2 * std, mu + 2 * std, 9, 6);
      c.fillStyle = ELLIPSE; band(mu - std, mu + std, 9, 6);
    }
    c.fillStyle = "#000"; c.fillRect(px(mu) - 1, 0, 2, 16);
    if (state.eps) c.fillRect(px(sampleOf(state.q, state.eps)[j]) - 3, 9, 6, 6);
    c.fillStyle = "#d00"; c.fillRect(px(state.z[j]) - 1.5, 0, 3, 16);
    slider.value = state.z[j];
  }
}

// ------------------------------------------------------------------ everything that follows a change

function show() {
  const { x, index, q, eps, z } = state, zs = eps && sampleOf(q, eps);
  drawImage($("image"), x); drawImage($("recon"), decode(q.mu)); drawImage($("decoded"), decode(z));
  $("image-caption").textContent = index === null ? "drawn: draw on it with the mouse"
    : `test image #${index}, a ${MODEL.class_names[labels[index]]}`;
  $("decoded-caption").textContent = `decoded at z = (${fmt(z)}), under the ${J === 2 ? "pointer" : "sliders"}`;
  $("sample").getContext("2d").clearRect(0, 0, W, H);
  if (zs) drawImage($("sample"), decode(zs));
  $("sample-caption").textContent = !VAE ? "an autoencoder's code has no noise to draw"
    : zs ? `decoded from z = μ + σ ε = (${fmt(zs)}), ε = (${fmt(eps)})`
    : "press “draw ε”: z = μ + σ ε, decoded here";
  $("pick").value = index === null ? "" : index;
  const what = { bce: "binary cross-entropy", mse: "squared error",
                 gaussian: `−log N(x; x̂, σ²) with the learned σ² = ${Math.exp(MODEL.x_logvar).toPrecision(3)}` }[MODEL.loss];
  const recon = model.recon(q.mu, x);
  const kl = VAE ? model.kl(q.mu, q.logvar) : null;
  const terms = [`This image's code: ${VAE ? `μ = (${fmt(q.mu)}), σ = (${fmt(stdOf(q))})` : `z = (${fmt(q.mu)})`}.`,
                 `In the training loss's units, per image (the ${what} summed over its ${D} pixels):`,
                 `reconstruction error from ${VAE ? "μ" : "the code"} ${recon.toFixed(2)}`];
  if (VAE) terms.push(`, KL(q(z|x) ‖ N(0, I)) ${kl.toFixed(2)}`);
  if (zs) {
    const error = model.recon(zs, x);
    terms.push(`; from this z ${error.toFixed(2)}, and there the loss, error + β KL`
               + (MODEL.free_bits ? ` (the ELBO's: training floored each dimension's KL at ${MODEL.free_bits} nats),` : ","),
               `${(error + MODEL.beta * kl).toFixed(2)}`);
  }
  $("terms").textContent = terms.join(" ").replaceAll(" ,", ",").replaceAll(" ;", ";") + ".";
  if (J === 2) drawPlane(); else drawBars();
  // What the page drew, read back from its canvases, and where: for tests/lab/test_explorer.py and the curious.
  const grey = $("decoded").getContext("2d").getImageData(0, 0, W, H).data.filter((_, k) => k % 4 === 0);
  $("drawn").textContent = JSON.stringify({ z, index, x, q, eps, kl, recon, view, gray: Array.from(grey),
                                            rect: box($("decoded")), plane: box(plane) });
}

function remember() {  // the address opens the page as it is now (not at every pointer move: browsers throttle it)
  const { index, z, eps } = state, numbers = (v) => v.map((a) => a.toFixed(3));
  try {
    history.replaceState(null, "", `#image=${index ?? ""}&z=${numbers(z)}` + (eps ? `&eps=${numbers(eps)}` : ""));
  } catch (err) { /* some browsers refuse it for file:// */ }
}

function readFragment() {  // explorer.html#image=7&z=0.5,-1.2&eps=1,0&slide=3,0.5&stroke=2,2;5,6 (rows, columns)
  const f = new URLSearchParams(location.hash.slice(1)), numbers = (text) => text.split(",").map(Number);
  pick(Math.max(0, shown.indexOf(Number(f.get("image") || shown[0]))));
  if (f.get("stroke")) {
    state.x = new Array(D).fill(0);
    stroke(f.get("stroke").split(";").map(numbers));
  }
  const [z, eps, slide] = ["z", "eps", "slide"].map((key) => f.get(key) && numbers(f.get(key)));
  if (z && z.length === J && z.every(Number.isFinite)) state.z = z;
  if (VAE && eps && eps.length === J) state.eps = eps;
  show();
  const row = slide && rows.find((r) => r.j === slide[0]);  // as if a hand moved slider j to slide[1]
  if (row) { row.slider.value = slide[1]; row.slider.dispatchEvent(new Event("input")); }
}

function box(element) {  // its content box on the screen, inside the border
  const r = element.getBoundingClientRect();
  return { left: r.left + element.clientLeft, top: r.top + element.clientTop,
           width: element.clientWidth, height: element.clientHeight };
}
const at = (e, element) => {  // where the event is in the element, as fractions of its width and height
  const b = box(element);
  return [(e.clientX - b.left) / b.width, (e.clientY - b.top) / b.height];
};
const codeAt = (e) => { const [u, v] = at(e, plane); return toCode(u * plane.width, v * plane.height); };
plane.addEventListener("pointermove", (e) => { state.z = codeAt(e); show(); });
plane.addEventListener("click", (e) => {  // the embedded test image whose code is nearest
  const z = codeAt(e), d2 = shown.map((i) => (codes[2 * i] - z[0]) ** 2 + (codes[2 * i + 1] - z[1]) ** 2);
  pick(d2.indexOf(Math.min(...d2)));
  remember();
});
$("pick").addEventListener("change", () => {  // the embedded test image at or past the index typed, in its direction
  const v = Number($("pick").value), up = v > (state.index ?? -1);
  const s = up ? shown.findIndex((i) => i >= v) : shown.findLastIndex((i) => i <= v);
  pick(s >= 0 ? s : up ? shown.length - 1 : 0);
  remember();
});
$("clear").addEventListener("click", () => setImage(new Array(D).fill(0), null));
$("reparam").addEventListener("click", () => { state.eps = Array.from({ length: J }, gaussian); show(); remember(); });
const image = $("image");
let last = null;
const pixelAt = (e) => { const [u, v] = at(e, image); return [v * H, u * W]; };  // [row, column]
image.addEventListener("pointerdown", (e) => { last = pixelAt(e); stroke([last]); });
image.addEventListener("pointermove", (e) => {
  if (e.buttons & 1 && last) { const p = pixelAt(e); stroke([last, p]); last = p; }
});
image.addEventListener("pointerup", () => { last = null; });
window.addEventListener("hashchange", readFragment);

for (const id of ["image", "recon", "sample", "decoded"]) Object.assign($(id), { width: W, height: H });
$("reparam").hidden = !VAE;
if (J === 2) {
  plane.hidden = false;
  drawStill();
  MODEL.class_names.forEach((name, y) => {
    const item = document.createElement("li"), swatch = document.createElement("span");
    Object.assign(swatch, { className: "swatch" }).style.background = MODEL.colours[y];
    item.append(swatch, name === String(y) ? name : `${y} ${name}`);
    $("legend").append(item);
  });
}
readFragment();
