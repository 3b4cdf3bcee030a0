"use strict";
const $ = (id) => document.getElementById(id);
let models = [], token = sessionStorage.getItem("aigc-token") || "", last = null, busy = false, shown = 0;

async function api(path, init = {}) {
  init.headers = Object.assign({}, init.headers || {}, token ? {Authorization: "Bearer " + token} : {});
  const res = await fetch(path, init);
  if (res.ok) return res;
  let line = res.status + " " + res.statusText;
  try { line = (await res.json()).error || line; } catch (e) { /* not JSON */ }
  const err = new Error(line);
  err.status = res.status;
  throw err;
}

function showError(msg) { $("error").textContent = msg || ""; }
function current() { return models.find((m) => m.name === $("model").value); }

async function loadModels() {
  try {
    models = await (await api("/models")).json();
  } catch (e) {
    if (e.status === 401) { $("token-box").style.display = "block"; }
    showError(e.message);
    return;
  }
  $("token-box").style.display = "none";
  showError("");
  const sel = $("model");
  sel.replaceChildren();
  for (const m of models) {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = `${m.name} (${m.modality}, ${m.family})`;
    sel.appendChild(o);
  }
  if (!models.length) showError("this server serves no model");
  else chooseModel();
}

function field(name, spec) {
  const wrap = document.createElement("div");
  const label = document.createElement("label");
  label.textContent = name.replace(/_/g, " ");
  label.htmlFor = "opt-" + name;
  let input;
  if (spec.choices) {
    input = document.createElement("select");
    const none = document.createElement("option");
    none.value = "";
    none.textContent = spec.default != null ? `default (${spec.default})` : (name === "label" ? "any (cycled)" : "default");
    input.appendChild(none);
    for (const c of spec.choices) {
      const o = document.createElement("option");
      o.value = c; o.textContent = c;
      input.appendChild(o);
    }
  } else if (spec.type === "boolean") {
    input = document.createElement("select");
    for (const [v, t] of [["", `default (${spec.default})`], ["true", "yes"], ["false", "no"]]) {
      const o = document.createElement("option");
      o.value = v; o.textContent = t;
      input.appendChild(o);
    }
  } else {
    input = document.createElement("input");
    if (spec.type === "integer" || spec.type === "number") {
      input.type = "number";
      input.step = spec.type === "integer" ? "1" : "any";
      if (spec.min != null) input.min = spec.min;
      if (spec.max != null) input.max = spec.max;
    } else if (spec.max_length) {
      input.maxLength = spec.max_length;
    }
    input.placeholder = spec.words ? "what to make, in your own words"
      : spec.default != null && spec.default !== "" ? `default ${spec.default}` : "default";
  }
  input.id = "opt-" + name;
  input.dataset.option = name;
  input.dataset.type = spec.type;
  wrap.append(label, input);
  if (spec.help) {
    const help = document.createElement("p");
    help.className = "help";
    const bounds = [spec.min != null ? `from ${spec.min}` : spec.above != null ? `above ${spec.above}` : "",
                    spec.max != null ? `to ${spec.max}` : ""].filter(Boolean).join(" ");
    help.textContent = spec.help + (bounds ? ` (${bounds})` : "");
    wrap.appendChild(help);
  }
  return wrap;
}

function chooseModel() {
  const m = current();
  if (!m) return;
  const form = $("options");
  form.replaceChildren();
  for (const [name, spec] of Object.entries(m.options)) form.appendChild(field(name, spec));
  const ev = m.eval && Object.keys(m.eval.values || {}).length
    ? Object.entries(m.eval.values).filter(([k]) => ["fid", "recall", "precision", "coverage", "nll", "bits_per_char",
        "label_accuracy", "novelty"].includes(k)).map(([k, v]) => `${k} ${(+v).toFixed(3)}`).join(", ")
    : "";
  $("facts").replaceChildren();
  const facts = document.createElement("div");
  facts.textContent = `${m.modality} · ${m.family} · ${m.checkpoint}` + (m.labels.length ? ` · ${m.labels.length} labels` : "");
  $("facts").appendChild(facts);
  if (ev) {
    const e = document.createElement("div");
    e.textContent = `aigc eval (n = ${m.eval.n}): ` + ev;
    $("facts").appendChild(e);
  }
  $("results").replaceChildren();
  $("match").textContent = "";
  $("n").max = m.max_n;
  $("download").hidden = $("reuse").hidden = true;
  $("seed-shown").textContent = "";
  $("status").textContent = "Pick options and press Generate.";
  loadReport(m);
}

function body(format) {
  const b = {n: parseInt($("n").value || "16", 10), format: format};
  const seed = $("seed").value.trim();
  if (seed !== "") b.seed = parseInt(seed, 10);
  for (const el of document.querySelectorAll("[data-option]")) {
    const v = el.value.trim();
    if (v === "") continue;
    const t = el.tagName === "SELECT" && el.dataset.type !== "boolean" ? "string" : el.dataset.type;  // choices: sent as chosen
    b[el.dataset.option] = t === "integer" ? parseInt(v, 10) : t === "number" ? parseFloat(v)
      : t === "boolean" ? v === "true" : v;
  }
  return b;
}

async function generate() {
  const m = current();
  if (!m || busy) return;
  busy = true;
  showError("");
  $("generate").disabled = true;
  $("status").textContent = "Generating…";
  const t0 = performance.now();
  try {
    const req = body("json");
    const res = await api(`/models/${encodeURIComponent(m.name)}/samples`, {
      method: "POST", headers: {"Content-Type": "application/json", Accept: "application/json"},
      body: JSON.stringify(req)});
    const out = await res.json();
    if (current() !== m) return;  // another model was chosen meanwhile: its page stays as it is
    last = {model: m, request: Object.assign(req, {seed: out.seed}), out: out};
    show(m, out);
    $("status").textContent = `${out.samples.length} samples in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  } catch (e) {
    showError(e.message);
    $("status").textContent = "";
  } finally {
    busy = false;
    $("generate").disabled = false;
  }
}

function matchLine(match) {  // '"warm boots" → Ankle boot 0.71 (Sneaker 0.52, Sandal 0.44)' per part
  const parts = match.parts.map((p) => {
    const [best, ...rest] = p.scores;
    const weight = match.parts.length > 1 ? `${(+p.weight).toFixed(2)} × ` : "";
    return `${weight}“${p.text}” → ${best.class} ${(+best.score).toFixed(2)}` +
      (rest.length ? ` (next: ${rest.slice(0, 2).map((r) => `${r.class} ${(+r.score).toFixed(2)}`).join(", ")})` : "");
  });
  const mix = match.mix ? " ⇒ mix of " + match.mix.map((c) => `${c.class} ${(+c.weight).toFixed(2)}`).join(" + ") : "";
  return "Prompt: " + parts.join("; ") + mix;
}

function show(m, out) {
  const box = $("results");
  box.replaceChildren();
  $("match").textContent = out.prompt_match ? matchLine(out.prompt_match) : "";
  if (m.modality === "image" || m.modality === "video") {  // a video sample is an animated GIF: it plays by itself
    out.samples.forEach((src, i) => {
      const img = document.createElement("img");
      img.className = "sample"; img.src = src; img.alt = `${m.modality === "video" ? "clip" : "sample"} ${i + 1}`;
      box.appendChild(img);
    });
  } else if (typeof out.samples[0] === "string" && out.samples[0].startsWith("data:audio")) {
    out.samples.forEach((src) => {
      const a = document.createElement("audio");
      a.className = "sample"; a.controls = true; a.src = src;
      box.appendChild(a);
    });
  } else {
    const ol = document.createElement("ol");
    for (const s of out.samples) {
      const li = document.createElement("li");
      li.className = "sample"; li.textContent = s;
      ol.appendChild(li);
    }
    box.appendChild(ol);
  }
  $("seed-shown").textContent = `seed ${out.seed}`;
  $("download").hidden = $("reuse").hidden = false;
}

async function download() {
  if (!last) return;
  const m = last.model;
  const fmt = m.formats.find((f) => f !== "json") || "json";
  try {
    let blob;
    if (fmt === "json") {
      blob = new Blob([JSON.stringify(last.out, null, 1)], {type: "application/json"});
    } else {
      const res = await api(`/models/${encodeURIComponent(m.name)}/samples`, {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify(Object.assign({}, last.request, {format: fmt}))});
      blob = await res.blob();
    }
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${m.name}-seed${last.out.seed}.${fmt}`;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  } catch (e) { showError(e.message); }
}

async function loadReport(m) {
  const box = $("report"), mine = ++shown;  // a later call wins: figures of two models never mix
  box.replaceChildren();
  try {
    const r = await (await api(`/models/${encodeURIComponent(m.name)}/report`)).json();
    for (const f of r.figures) {
      const res = await api(f);
      if (mine !== shown) return;
      const img = document.createElement("img");
      img.alt = f.split("/").pop();
      img.src = URL.createObjectURL(await res.blob());
      box.appendChild(img);
    }
    if (r.report && mine === shown) {
      const pre = document.createElement("pre");
      pre.textContent = r.report;
      box.appendChild(pre);
    }
  } catch (e) { if (mine === shown) box.textContent = e.message; }
}

$("model").addEventListener("change", chooseModel);
$("options").addEventListener("submit", (e) => e.preventDefault());
$("options").addEventListener("input", (e) => {  // words or a label: a conditional model takes one of them
  const other = e.target.id === "opt-prompt" ? $("opt-label") : e.target.id === "opt-label" ? $("opt-prompt") : null;
  if (other && e.target.value !== "" && current() && current().options.prompt && current().options.prompt.words) other.value = "";
});
$("generate").addEventListener("click", generate);
$("download").addEventListener("click", download);
$("reuse").addEventListener("click", () => { if (last) $("seed").value = last.out.seed; });
$("token-go").addEventListener("click", () => {
  token = $("token").value.trim();
  sessionStorage.setItem("aigc-token", token);
  loadModels();
});
document.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.target.tagName === "INPUT" && e.target.id !== "token") generate(); });
loadModels();
