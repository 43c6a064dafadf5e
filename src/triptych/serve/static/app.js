// The triptych page: plain browser JavaScript, no build step, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);

// POST/GET against the API; resolves to the JSON body, throws an Error carrying the server's {"error"} text.
async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON: reported below */ }
  if (!response.ok) {
    throw new Error((body && body.error) || `HTTP ${response.status}`);
  }
  return body;
}

// --- status: which domains this server holds ---------------------------------

async function loadStatus() {
  try {
    const health = await api("/healthz");
    $("status").textContent = "loaded: " + (health.domains.join(", ") || "nothing");
    for (const domain of ["text", "image", "video"]) {
      const loaded = health.domains.includes(domain === "image" ? "vision" : domain);
      $(domain + "-panel").classList.toggle("disabled", !loaded);
      if (!loaded) $(domain + "-panel").title = `no ${domain === "image" ? "vision" : domain} model on this server`;
    }
    const models = await api("/v1/models");
    if (models.text) $("beam").value = models.text.config.decode.beam;
  } catch (e) {
    $("status").textContent = "server unreachable: " + e.message;
  }
}

// --- text: summary and attention heat-map --------------------------------------

async function summarize() {
  const button = $("summarize");
  $("text-error").textContent = "";
  $("summary").textContent = "";
  button.disabled = true;
  try {
    const body = JSON.stringify({ documents: [$("document").value], beam: Number($("beam").value) || 1, attention: true });
    const result = await api("/v1/summarize", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    $("summary").textContent = result.summaries[0] || "(empty summary)";
    if (result.attention) drawHeatmap($("heatmap"), result.attention[0]);
  } catch (e) {
    $("text-error").textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

function cleanPiece(piece) {
  return piece.replace(/\s+/g, " ").trim() || "·";
}

// attention = {source: [S pieces], summary: [T pieces], weights: T rows of S floats}
function drawHeatmap(canvas, attention) {
  const rows = attention.summary.map(cleanPiece), cols = attention.source.map(cleanPiece);
  const ctx = canvas.getContext("2d");
  if (!rows.length || !cols.length) { canvas.width = canvas.height = 1; return; }
  ctx.font = "11px system-ui, sans-serif";
  const left = Math.min(110, 8 + Math.max(...rows.map((r) => ctx.measureText(r).width)));
  const width = Math.max(200, canvas.parentElement.clientWidth - 4);
  const cell = Math.max(3, Math.min(16, Math.floor((width - left) / cols.length)));  // column width
  const high = Math.max(cell, 13);  // row height: a summary token's label must stay readable
  const top = cell >= 9 ? Math.min(90, 8 + Math.max(...cols.map((c) => ctx.measureText(c).width))) : 4;
  canvas.width = left + cell * cols.length;
  canvas.height = top + high * rows.length;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  attention.weights.forEach((row, t) => {
    const peak = Math.max(...row, 1e-9);  // each row scaled to its own maximum, so faint rows still show
    row.forEach((w, s) => {
      const shade = Math.round(255 * (1 - w / peak));
      ctx.fillStyle = `rgb(${shade},${shade},255)`;
      ctx.fillRect(left + s * cell, top + t * high, cell, high);
    });
  });
  ctx.fillStyle = "#1d232a";
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  rows.forEach((r, t) => ctx.fillText(r, left - 4, top + t * high + high / 2, left - 6));
  if (cell >= 9) {  // column labels only where they can be read
    cols.forEach((c, s) => {
      ctx.save();
      ctx.translate(left + s * cell + cell / 2, top - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      ctx.fillText(c, 0, 0, top - 6);
      ctx.restore();
    });
  }
}

// --- uploads: image top-5 bars, video top labels -------------------------------

function bars(list, top) {
  list.replaceChildren(...top.map((t) => {
    const li = document.createElement("li");
    const label = document.createElement("span"), bar = document.createElement("span"), prob = document.createElement("span");
    label.className = "label"; label.textContent = t.label; label.title = t.label;
    bar.className = "bar"; bar.style.width = (100 * t.prob).toFixed(1) + "%";
    prob.className = "prob"; prob.textContent = (100 * t.prob).toFixed(1) + "%";
    li.append(label, document.createElement("div"), prob);
    li.children[1].append(bar);
    return li;
  }));
}

async function upload(path, file) {
  const form = new FormData();
  form.append("file", file, file.name);
  return api(path, { method: "POST", body: form });
}

async function classifyImage(file) {
  $("image-error").textContent = "";
  $("image-top").replaceChildren();
  $("image-preview").src = URL.createObjectURL(file);
  try {
    bars($("image-top"), (await upload("/v1/classify/image?top_k=5", file)).top);
  } catch (e) {
    $("image-error").textContent = e.message;
  }
}

async function classifyVideo(file) {
  $("video-error").textContent = "";
  const out = $("video-top");
  out.replaceChildren();
  try {
    const result = await upload("/v1/classify/video?top_k=5", file);
    for (const video of result.videos) {
      const block = document.createElement("div"), title = document.createElement("h3"), list = document.createElement("ol");
      block.className = "video"; title.textContent = "video " + video.id; list.className = "bars";
      bars(list, video.top);
      block.append(title, list);
      out.append(block);
    }
  } catch (e) {
    $("video-error").textContent = e.message;
  }
}

// A drop zone that is also a click-to-choose file input.
function dropZone(zone, input, handle) {
  input.addEventListener("change", () => input.files.length && handle(input.files[0]));
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) handle(e.dataTransfer.files[0]);
  });
}

$("summarize").addEventListener("click", summarize);
$("document").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) summarize(); });
dropZone($("image-drop"), $("image-file"), classifyImage);
dropZone($("video-drop"), $("video-file"), classifyVideo);
loadStatus();
