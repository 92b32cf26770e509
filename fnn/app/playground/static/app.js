// fnn playground page: settings -> WebSocket -> frames from fnn -> canvases.
// Testing hook: window.fnnPlayground = {state(), play(), pause(), step()}.
import { decode, drawMap, drawPoints, drawCurves, colour } from "./draw.js";

const $ = (id) => document.getElementById(id);
const LR = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const REG_RATES = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const LOCAL = new Set(["showTestData", "discretize"]);   // drawn here, also sent (validated)
const S = { config: null, options: null, frame: null, train: null, test: null, playing: false,
            epoch: 0, trainLoss: null, testLoss: null, history: null, norms: [], error: null,
            diverged: false, explain: null, compare: null, ready: false };
let ws;

// ------------------------------------------------------------------ URL hash <-> config
function parseHash() {
  const out = {};
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    if (!part) continue;
    const [k, raw = ""] = part.split("=").map(decodeURIComponent);
    if (k === "networkShape") out[k] = raw === "" ? [] : raw.split(",").map(Number);
    else if (k === "optimizerArgs") out[k] = Object.fromEntries(raw.split(",").filter(Boolean)
        .map((kv) => { const [a, b] = kv.split(":"); return [a, Number(b)]; }));
    else if (raw === "true" || raw === "false") out[k] = raw === "true";
    else if (raw !== "" && !isNaN(Number(raw))) out[k] = Number(raw);
    else out[k] = raw;
  }
  return out;
}
function writeHash() {
  const c = S.config, parts = [];
  for (const [k, v] of Object.entries(c)) {
    let s = v;
    if (k === "networkShape") s = v.join(",");
    else if (k === "optimizerArgs") s = Object.entries(v).map(([a, b]) => `${a}:${b}`).join(",");
    parts.push(`${k}=${encodeURIComponent(s)}`);
  }
  history.replaceState(null, "", "#" + parts.join("&"));
}

// ------------------------------------------------------------------ socket
function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }
function setConfig(changes) { send({ type: "config", config: changes }); }
function connect() {
  ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => send({ type: "config", config: parseHash() });
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = () => showError("connection to the fnn server closed; reload the page");
}
function showError(text) {
  S.error = text; $("error").textContent = text; $("error").hidden = !text;
}
function onMessage(m) {
  if (m.type === "error") {
    showError(m.message);
    if (!S.ready) { S.fallback = true; setConfig({}); }   // a bad link: start from the defaults
    return;
  }
  if (m.type === "frame") return onFrame(m);
  if (m.type === "paused") { setPlaying(false); if (m.reason === "diverged") status(); return; }
  if (m.type === "compare") { S.compare = m; drawCompare(); return; }
  if (m.type === "explain") { S.explain = m.text; $("explain").textContent = m.text;
    $("explain").hidden = false; return; }
  if (m.type === "export") return download(m.filename, new Blob([m.text], { type: "text/x-python" }));
  if (m.type === "checkpoint") {
    const bytes = Uint8Array.from(atob(m.base64), (c) => c.charCodeAt(0));
    return download(m.filename, new Blob([bytes], { type: "application/octet-stream" }));
  }
}
function download(name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name; a.click();
}

// ------------------------------------------------------------------ frames
function onFrame(f) {
  if (f.config) {
    const first = !S.ready;
    S.config = f.config; S.options = S.options || f.options; S.train = f.train; S.test = f.test;
    S.history = f.history; S.norms = f.normHistory; S.featureNames = f.featureNames;
    S.ready = true; if (!S.fallback) showError(""); S.fallback = false; writeHash(); buildControls(first); buildNetwork();
  } else {
    S.history.epoch.push(f.epoch); S.history.train.push(f.trainLoss);
    S.history.test.push(f.testLoss); S.norms.push(f.norms);
  }
  S.frame = f; S.epoch = f.epoch; S.trainLoss = f.trainLoss; S.testLoss = f.testLoss;
  S.diverged = f.diverged;
  $("epoch").textContent = String(f.epoch).padStart(6, "0").replace(/(\d{3})$/, ",$1");
  $("trainLoss").textContent = f.trainLoss == null ? "NaN" : f.trainLoss.toFixed(3);
  $("testLoss").textContent = f.testLoss == null ? "NaN" : f.testLoss.toFixed(3);
  status(); drawOutput(); drawNeurons(); drawLinks(); drawHistory();
}
function status() {
  $("status").textContent = S.diverged ? "diverged: the loss became NaN. Reset, or lower the learning rate." : "";
}
function drawOutput() {
  const f = S.frame, cv = $("heatmap"), ctx = cv.getContext("2d");
  drawMap(ctx, decode(f.output), f.grid, cv.width, S.config.discretize);
  const regression = S.config.problem === "regression";
  drawPoints(ctx, S.train, f.extent, cv.width, false, regression);
  if (S.config.showTestData) drawPoints(ctx, S.test, f.extent, cv.width, true, regression);
}
function drawHistory() {
  const h = S.history;
  drawCurves($("curve"), [{ ys: h.test, colour: "#000" }, { ys: h.train, colour: "#999" }], false);
  const layers = (S.norms[0] || { weight: [] }).weight.length, series = [];
  const hue = (i) => `hsl(${(i * 360) / Math.max(layers, 1)},65%,42%)`;
  for (let i = 0; i < layers; i++) {
    series.push({ ys: S.norms.map((n) => n.weight[i]), colour: hue(i) });
    series.push({ ys: S.norms.map((n) => n.grad[i]), colour: hue(i), dash: true });
  }
  drawCurves($("norms"), series, true);
  $("normsLegend").innerHTML = Array.from({ length: layers }, (_, i) =>
    `<span style="color:${hue(i)}">layer ${i + 1}</span>`).join(" · ") +
    " — solid |W|, dashed |dL/dW| (log scale)";
}

// ------------------------------------------------------------------ network view
const NODE = 36, OUT_X = 500;
function layerX(l, L) { return 60 + (l * (OUT_X - 80)) / Math.max(L, 1); }
function nodeY(i) { return 10 + i * (NODE + 10); }
const FEATURE_KEYS = ["x", "y", "xSquared", "ySquared", "xTimesY", "sinX", "sinY"];
const FEATURE_LABELS = { x: "x1", y: "x2", xSquared: "x1²", ySquared: "x2²", xTimesY: "x1·x2",
                         sinX: "sin x1", sinY: "sin x2" };
// Row of node i of layer l: the input column shows all seven features (switched-off ones
// greyed), so input i (the i-th switched-on feature) sits at its feature's row.
function row(l, i) {
  return l > 0 ? i : FEATURE_KEYS.indexOf(FEATURE_KEYS.filter((k) => S.config[k])[i]);
}
function buildNetwork() {
  const net = $("net");
  net.querySelectorAll(".neuron,.nlabel,.unitctl").forEach((e) => e.remove());
  const shape = S.config.networkShape, L = shape.length + 1;
  $("layerCount").textContent = shape.length;
  FEATURE_KEYS.forEach((k, r) => {
    const d = document.createElement("div");
    d.className = "neuron" + (S.config[k] ? "" : " off"); d.id = `f-${r}`;
    Object.assign(d.style, { left: layerX(0, L) + "px", top: nodeY(r) + "px",
                             width: NODE + "px", height: NODE + "px" });
    const cv = document.createElement("canvas"); cv.width = cv.height = 25;
    d.appendChild(cv); net.appendChild(d);
    d.title = `feature ${FEATURE_LABELS[k]} (click: switch ${S.config[k] ? "off" : "on"})`;
    d.onclick = () => setConfig({ [k]: !S.config[k] });
    const lab = document.createElement("div");
    lab.className = "nlabel"; lab.textContent = FEATURE_LABELS[k];
    Object.assign(lab.style, { left: layerX(0, L) - 50 + "px", top: nodeY(r) + 10 + "px" });
    net.appendChild(lab);
  });
  shape.forEach((n, h) => {
    const l = h + 1;
    for (let i = 0; i < n; i++) {
      const d = document.createElement("div");
      d.className = "neuron"; d.id = `n-${l}-${i}`;
      Object.assign(d.style, { left: layerX(l, L) + "px", top: nodeY(i) + "px",
                               width: NODE + "px", height: NODE + "px" });
      const cv = document.createElement("canvas"); cv.width = cv.height = 25;
      d.appendChild(cv); net.appendChild(d);
    }
    const c = document.createElement("div"); c.className = "unitctl";
    Object.assign(c.style, { left: layerX(l, L) - 4 + "px", top: "-4px" });
    c.innerHTML = `<button data-d="1">+</button><button data-d="-1">&minus;</button> ${n}`;
    c.querySelectorAll("button").forEach((b) => b.onclick = () => {
      const s = [...shape]; s[h] = Math.min(8, Math.max(1, s[h] + Number(b.dataset.d)));
      setConfig({ networkShape: s });
    });
    net.appendChild(c);
  });
  const out = document.createElement("div"); out.className = "neuron"; out.id = "n-out";
  Object.assign(out.style, { left: OUT_X + "px", top: nodeY(0) + "px", width: NODE + "px", height: NODE + "px" });
  const cv = document.createElement("canvas"); cv.width = cv.height = 25; out.appendChild(cv);
  net.appendChild(out);
}
function drawNeurons() {
  const f = S.frame;
  f.neurons.forEach((layer, l) => layer.forEach((b64, i) => {
    const d = l === 0 ? $(`f-${row(0, i)}`) : $(`n-${l}-${i}`); if (!d) return;
    drawMap(d.firstChild.getContext("2d"), decode(b64), f.neuronGrid, 25, false);
    d.classList.toggle("dead", l > 0 && (f.dead[l - 1] || []).includes(i));
    if (l > 0) d.title = (f.dead[l - 1] || []).includes(i) ? "dead ReLU unit: 0 on every training point" : `layer ${l}, unit ${i + 1}`;
  }));
  const o = $("n-out");
  if (o) drawMap(o.firstChild.getContext("2d"), decode(f.output), f.grid, 25, S.config.discretize);
}
function drawLinks() {
  const f = S.frame, svg = $("links"), L = f.weights.length;
  const cols = f.weights.map((w) => w.length);
  let html = "";
  const centre = (l, i) => l === L ? [OUT_X + NODE / 2, nodeY(0) + NODE / 2] : [layerX(l, L) + NODE / 2, nodeY(row(l, i)) + NODE / 2];
  f.weights.forEach((w, l) => w.forEach((row, i) => row.forEach((v, j) => {
    if (l === L - 1 && j > 0) return;           // one output node drawn: its first column
    const val = (l === L - 1 && S.config.problem === "classification") ? row[1] - row[0] : v;
    const [x1, y1] = centre(l, i), [x2, y2] = centre(l + 1, j);
    const width = val == null ? 1 : Math.min(8, 0.5 + Math.abs(val) * 2);
    const stroke = val == null ? "#c00" : colour(Math.max(-1, Math.min(1, val)), true);
    html += `<line x1="${x1 + NODE / 2}" y1="${y1}" x2="${x2 - NODE / 2}" y2="${y2}" stroke="${stroke}" stroke-width="${width}"><title>weight ${val == null ? "NaN" : val.toFixed(3)} (layer ${l + 1}, ${i + 1} → ${j + 1})</title></line>`;
  })));
  svg.innerHTML = html;
}

// ------------------------------------------------------------------ controls
function select(id, values, label = (v) => v) {
  const el = $(id); el.innerHTML = values.map((v) => `<option value="${v}">${label(v)}</option>`).join("");
}
function buildControls(first) {
  const c = S.config, o = S.options;
  if (first) {
    select("learningRate", LR); select("regularizationRate", REG_RATES);
    select("activation", o.activations); select("regularization", ["none", "L1", "L2"]);
    select("problem", ["classification", "regression"]); select("optimizer", o.optimizers);
    select("initializer", o.initializers); select("cmpKey", o.compareKeys);
    for (const id of ["learningRate", "regularizationRate"])
      $(id).onchange = () => setConfig({ [id]: Number($(id).value) });
    for (const id of ["activation", "regularization", "problem", "optimizer", "initializer"])
      $(id).onchange = () => setConfig({ [id]: $(id).value });
    for (const id of ["percTrainData", "noise", "batchSize", "numPoints"])
      $(id).onchange = () => setConfig({ [id]: Number($(id).value) });
    for (const id of ["showTestData", "discretize"])
      $(id).onchange = () => { S.config[id] = $(id).checked; setConfig({ [id]: $(id).checked }); drawOutput(); };
    $("play").onclick = () => (S.playing ? pause() : play());
    $("step").onclick = step;
    $("reset").onclick = () => { pause(); send({ type: "reset" }); };
    $("regenerate").onclick = () => send({ type: "regenerate" });
    $("addLayer").onclick = () => setConfig({ networkShape: [...S.config.networkShape, 2].slice(0, 6) });
    $("removeLayer").onclick = () => setConfig({ networkShape: S.config.networkShape.slice(0, -1) });
    $("export").onclick = () => send({ type: "export" });
    $("checkpoint").onclick = () => send({ type: "checkpoint" });
    $("preset-oscillation").onclick = () => { setPlaying(false); send({ type: "preset", name: "oscillation" }); };
    $("preset-collapse").onclick = () => { setPlaying(false); send({ type: "preset", name: "collapse" }); };
    $("cmpKey").onchange = () => { $("cmpValues").value = CMP_DEFAULTS[$("cmpKey").value] || ""; };
    $("cmpRun").onclick = runCompare;
  }
  const set = (id, v) => { if (!LR.includes(v) && id === "learningRate") $(id).add(new Option(v, v)); $(id).value = v; };
  set("learningRate", c.learningRate);
  if (!REG_RATES.includes(c.regularizationRate)) $("regularizationRate").add(new Option(c.regularizationRate, c.regularizationRate));
  for (const id of ["regularizationRate", "activation", "regularization", "problem", "optimizer", "initializer"]) $(id).value = c[id];
  for (const id of ["percTrainData", "noise", "batchSize", "numPoints"]) { $(id).value = c[id]; $(id + "V").textContent = c[id]; }
  $("batchSize").max = Math.max(30, c.batchSize);
  $("showTestData").checked = c.showTestData; $("discretize").checked = c.discretize;
  const names = c.problem === "classification" ? o.datasets : o.regDatasets;
  $("datasets").innerHTML = names.map((n) => `<button class="${n === (c.problem === "classification" ? c.dataset : c.regDataset) ? "on" : ""}" data-n="${n}">${n}</button>`).join("");
  $("datasets").querySelectorAll("button").forEach((b) => b.onclick = () =>
    setConfig(c.problem === "classification" ? { dataset: b.dataset.n } : { regDataset: b.dataset.n }));
  const hp = o.hyperparams[c.optimizer];
  $("optimizerArgs").innerHTML = Object.keys(hp).length ? `${c.optimizer}: ` + Object.entries(hp).map(([k, d]) =>
    `${k}<input data-k="${k}" value="${c.optimizerArgs[k] ?? d}">`).join("") : "";
  $("optimizerArgs").querySelectorAll("input").forEach((inp) => inp.onchange = () =>
    setConfig({ optimizerArgs: { ...S.config.optimizerArgs, [inp.dataset.k]: Number(inp.value) } }));
}
const CMP_DEFAULTS = { learningRate: "0.003, 0.03, 0.3, 1", optimizer: "sgd, adam, rmsprop, adagrad",
                       activation: "relu, tanh, sigmoid, linear", batchSize: "1, 10, 30", seed: "0, 1, 2, 3" };
function runCompare() {
  const key = $("cmpKey").value;
  const values = $("cmpValues").value.split(",").map((s) => s.trim()).filter(Boolean)
    .map((s) => (isNaN(Number(s)) ? s : Number(s)));
  send({ type: "compare", key, values, epochs: Number($("cmpEpochs").value) });
}
function drawCompare() {
  const m = S.compare, hue = (i) => `hsl(${(i * 360) / m.variants.length},70%,42%)`;
  drawCurves($("cmpCurves"), m.variants.map((v, i) => ({ ys: v.loss, colour: hue(i) })), true);
  $("cmpMaps").innerHTML = "";
  m.variants.forEach((v, i) => {
    const fig = document.createElement("figure"), cv = document.createElement("canvas");
    cv.width = cv.height = 90; fig.appendChild(cv);
    drawMap(cv.getContext("2d"), decode(v.output), m.grid, 90, false);
    fig.insertAdjacentHTML("beforeend", `<figcaption style="color:${hue(i)}">${m.key} ${v.value}<br>` +
      (v.diverged ? "diverged" : `loss ${v.finalLoss.toFixed(3)}`) + "</figcaption>");
    $("cmpMaps").appendChild(fig);
  });
}

// ------------------------------------------------------------------ play / pause / step
const ICONS = { play: '<svg viewBox="0 0 20 20" width="20" height="20"><path d="M6 4 L16 10 L6 16 Z" fill="#fff"/></svg>',
                pause: '<svg viewBox="0 0 20 20" width="20" height="20"><rect x="5" y="4" width="3.5" height="12" fill="#fff"/><rect x="11.5" y="4" width="3.5" height="12" fill="#fff"/></svg>' };
function setPlaying(on) { S.playing = on; $("play").innerHTML = on ? ICONS.pause : ICONS.play; }
function play() { setPlaying(true); send({ type: "play" }); }
function pause() { setPlaying(false); send({ type: "pause" }); }
function step() { setPlaying(false); send({ type: "step" }); }

window.fnnPlayground = {
  state: () => ({ epoch: S.epoch, trainLoss: S.trainLoss, testLoss: S.testLoss,
                  config: S.config, playing: S.playing, diverged: S.diverged, error: S.error,
                  ready: S.ready, explain: S.explain,
                  compare: S.compare && S.compare.variants.map((v) => ({ value: v.value, finalLoss: v.finalLoss })) }),
  play, pause, step,
};
connect();
