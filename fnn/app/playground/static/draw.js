// Drawing: heat maps (values in [-1, 1] as base64 uint8), data points, line charts.
// Colours as TensorFlow Playground: orange for -1, white for 0, blue for +1.
const NEG = [245, 147, 34], POS = [8, 119, 189], MID = [232, 234, 235];

export function decode(b64) {
  const s = atob(b64), out = new Float32Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) / 127.5 - 1;
  return out;
}
function rgb(v) {
  const t = Math.min(1, Math.abs(v)), end = v < 0 ? NEG : POS;
  return MID.map((m, k) => Math.round(m + (end[k] - m) * t));
}
export function colour(v, strong = false) {
  const [r, g, b] = rgb(strong ? Math.sign(v) * Math.max(0.35, Math.abs(v)) : v);
  return `rgb(${r},${g},${b})`;
}
export function drawMap(ctx, values, n, size, discretize) {
  const img = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const v = discretize ? (values[i] >= 0 ? 1 : -1) : values[i];
    const [r, g, b] = rgb(v * 0.6);
    img.data.set([r, g, b, 255], 4 * i);
  }
  const off = document.createElement("canvas");
  off.width = off.height = n; off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, size, size);
}
export function drawPoints(ctx, set, extent, size, test, regression) {
  const px = (v) => ((v + extent) / (2 * extent)) * size;
  set.x.forEach(([a, b], i) => {
    const y = set.y[i], v = regression ? y : (y > 0 ? 1 : -1);
    ctx.beginPath(); ctx.arc(px(a), size - px(b), 3, 0, 2 * Math.PI);
    ctx.fillStyle = colour(v, true); ctx.fill();
    ctx.lineWidth = test ? 1.5 : 1; ctx.strokeStyle = test ? "#000" : "#fff"; ctx.stroke();
  });
}
// series: [{ys: [number|null], colour, dash}]; log: log10 y axis.
export function drawCurves(cv, series, log) {
  const ctx = cv.getContext("2d"), W = cv.width, H = cv.height;
  ctx.clearRect(0, 0, W, H);
  const f = (v) => (v == null || !isFinite(v) || (log && v <= 0) ? null : log ? Math.log10(v) : v);
  let lo = Infinity, hi = -Infinity, n = 0;
  for (const s of series) { n = Math.max(n, s.ys.length);
    for (const v of s.ys) { const y = f(v); if (y != null) { lo = Math.min(lo, y); hi = Math.max(hi, y); } } }
  if (!isFinite(lo)) return;
  // a diverging series would squash the others: the axis stops at 10x the largest start
  const starts = series.map((s) => f(s.ys.find((v) => f(v) != null))).filter((v) => v != null);
  if (log && starts.length) hi = Math.min(hi, Math.max(...starts) + 1);
  if (!log) lo = Math.min(lo, 0);
  if (hi - lo < 1e-9) hi = lo + 1;
  for (const s of series) {
    ctx.beginPath(); ctx.strokeStyle = s.colour; ctx.lineWidth = 1.5;
    ctx.setLineDash(s.dash ? [4, 3] : []);
    let pen = false;
    s.ys.forEach((v, i) => {
      const y = f(v);
      if (y == null) { pen = false; return; }
      const X = (i / Math.max(n - 1, 1)) * (W - 4) + 2;
      const Y = Math.max(1, H - 2 - ((y - lo) / (hi - lo)) * (H - 4));
      pen ? ctx.lineTo(X, Y) : ctx.moveTo(X, Y); pen = true;
    });
    ctx.stroke();
  }
  ctx.setLineDash([]);
  if (log) { ctx.fillStyle = "#777"; ctx.font = "10px sans-serif";
    ctx.fillText(`1e${hi.toFixed(1)}`, 2, 10); ctx.fillText(`1e${lo.toFixed(1)}`, 2, H - 3); }
}
