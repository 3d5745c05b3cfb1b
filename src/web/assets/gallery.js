// media-gen gallery: lists the library through /gallery/api, opens a detail
// view per file (#/NAME, so lineage links are plain links), deletes through
// DELETE /files/NAME, and follows /gallery/events to show new media live.
// No framework, no external requests: everything comes from this server.
"use strict";

const PAGE = 60;
const state = { type: "all", q: "", items: [], total: 0, next: null, current: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function enc(name) {
  return encodeURIComponent(name);
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  if (response.status === 401) {
    throw new Error("This server needs its token: open /gallery?token=YOUR_MCP_HTTP_TOKEN once.");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

function status(text) {
  $("status").textContent = text || "";
}

function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || "";
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
}

function bytes(n) {
  if (n == null) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function usd(v) {
  return typeof v === "number" ? `$${v.toFixed(v < 1 ? 3 : 2)}` : null;
}

function dims(f) {
  return f.width && f.height ? `${f.width}×${f.height}` : null;
}

function title(f) {
  if (f.prompt) return f.prompt;
  if (f.operation === "upload") return `Uploaded image · ${f.filename}`;
  if (f.operation) return `${f.operation[0].toUpperCase()}${f.operation.slice(1)} · ${f.filename}`;
  return f.filename;
}

function card(f) {
  const info = [f.model, dims(f), when(f.created), usd(f.cost_usd)].filter(Boolean).join(" · ");
  const thumb = el("div", { class: "thumb" },
    el("img", { src: `/gallery/thumbs/${enc(f.filename)}`, alt: "", loading: "lazy", decoding: "async" }),
    f.type === "video" ? el("span", { class: "badge", text: "video" }) : null);
  const link = el("a", { href: `#/${enc(f.filename)}`, "data-name": f.filename, "aria-label": title(f) },
    thumb,
    el("div", { class: "text" },
      el("p", { class: "prompt", text: title(f) }),
      el("p", { class: "info", text: info })));
  return el("li", { class: "card", "data-name": f.filename, "data-type": f.type }, link);
}

function renderCount() {
  const shown = state.items.length;
  $("count").textContent = state.total === 1 ? "1 file" : `${state.total} files` +
    (shown < state.total ? ` (${shown} shown)` : "");
  $("empty").hidden = state.total > 0;
  $("more").hidden = state.next == null;
}

async function load(reset) {
  const offset = reset ? 0 : state.next || 0;
  const params = new URLSearchParams({ type: state.type, limit: String(PAGE), offset: String(offset) });
  if (state.q) params.set("q", state.q);
  try {
    const page = await api(`/gallery/api/files?${params}`);
    if (reset) {
      state.items = [];
      $("grid").replaceChildren();
    }
    state.items.push(...page.files);
    state.total = page.total;
    state.next = page.next_offset ?? null;
    $("grid").append(...page.files.map(card));
    renderCount();
    status("");
  } catch (e) {
    status(e.message);
  }
}

function matchesFilters(f) {
  if (state.type !== "all" && f.type !== state.type) return false;
  if (state.q && !(f.prompt || "").toLowerCase().includes(state.q.toLowerCase())) return false;
  return true;
}

// --- detail view ---------------------------------------------------------

function fact(list, name, value) {
  if (value === undefined || value === null || value === "") return;
  list.append(el("dt", { text: name }), el("dd", { text: String(value) }));
}

function fileLink(name) {
  return el("a", { href: `#/${enc(name)}`, text: name });
}

async function open(name) {
  let info;
  try {
    info = await api(`/gallery/api/files/${enc(name)}`);
  } catch (e) {
    status(e.message);
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
    return;
  }
  state.current = info;
  const meta = info.metadata || {};
  const src = `/files/${enc(info.filename)}`;
  $("detail-title").textContent = info.filename;
  const media = info.type === "video"
    ? el("video", { src, controls: true, preload: "metadata", poster: `/gallery/thumbs/${enc(info.filename)}` })
    : el("img", { src, alt: meta.prompt || info.filename });
  $("media").replaceChildren(media);
  $("prompt").textContent = meta.prompt ||
    (meta.operation === "upload" ? `Uploaded ${meta.original_name || "image"}` :
      meta.operation ? `${meta.operation[0].toUpperCase()}${meta.operation.slice(1)} of another image` :
        "No prompt recorded");
  const list = $("meta");
  list.replaceChildren();
  fact(list, "Type", info.type);
  fact(list, "Model", meta.model);
  fact(list, "Operation", meta.operation);
  fact(list, "Original name", meta.original_name);
  fact(list, "Size", dims(info));
  fact(list, "Aspect ratio", meta.aspect_ratio);
  fact(list, "Image size", meta.image_size);
  fact(list, "Duration", meta.duration_seconds ? `${meta.duration_seconds} s` : null);
  fact(list, "File", `${bytes(info.size_bytes)}, ${info.mime_type}`);
  fact(list, "Created", when(info.created));
  fact(list, "Estimated cost", usd(meta.cost_usd));
  const lineage = $("lineage");
  lineage.replaceChildren();
  if (info.lineage.source) {
    lineage.append(el("p", {}, "Made from ", fileLink(info.lineage.source)));
  }
  if (info.lineage.derived.length) {
    lineage.append(el("p", { text: "Made from this:" }),
      el("ul", {}, ...info.lineage.derived.map((d) => el("li", {}, fileLink(d)))));
  }
  const download = $("download");
  download.href = `${src}?download=1`;
  download.setAttribute("download", info.filename);
  $("confirm").hidden = true;
  const dialog = $("detail");
  if (!dialog.open) dialog.showModal();
  $("close").focus();
}

function close() {
  const dialog = $("detail");
  if (dialog.open) dialog.close();
  $("media").replaceChildren();
  state.current = null;
}

function step(delta) {
  if (!state.current) return;
  const i = state.items.findIndex((f) => f.filename === state.current.filename);
  const next = state.items[i + delta];
  if (next) location.hash = `#/${enc(next.filename)}`;
}

function route() {
  const match = location.hash.match(/^#\/(.+)$/);
  if (match) open(decodeURIComponent(match[1]));
  else close();
}

function forget(name) {
  const before = state.items.length;
  state.items = state.items.filter((f) => f.filename !== name);
  if (state.items.length < before) state.total = Math.max(0, state.total - 1);
  for (const node of $("grid").querySelectorAll(".card")) {
    if (node.dataset.name === name) node.remove();
  }
  renderCount();
}

async function remove() {
  const info = state.current;
  if (!info) return;
  try {
    await api(`/files/${enc(info.filename)}`, { method: "DELETE" });
    forget(info.filename);
    status(`Deleted ${info.filename}.`);
    history.replaceState(null, "", location.pathname + location.search);
    close();
  } catch (e) {
    status(e.message);
  }
}

// --- live updates --------------------------------------------------------

async function added(name) {
  if (state.items.some((f) => f.filename === name)) return;
  try {
    const info = await api(`/gallery/api/files/${enc(name)}`);
    const meta = info.metadata || {};
    const entry = {
      filename: info.filename, type: info.type, size_bytes: info.size_bytes,
      created: info.created, prompt: meta.prompt || null, model: meta.model || null,
      mime_type: info.mime_type, width: info.width, height: info.height,
      cost_usd: meta.cost_usd, operation: meta.operation, url: info.url,
    };
    if (!matchesFilters(entry) || state.items.some((f) => f.filename === name)) return;
    state.items.unshift(entry);
    state.total += 1;
    $("grid").prepend(card(entry));
    renderCount();
  } catch (e) {
    // Deleted again before we asked, or the token is missing: nothing to show.
  }
}

function follow() {
  const events = new EventSource("/gallery/events");
  events.addEventListener("added", (e) => added(e.data));
  events.addEventListener("removed", (e) => forget(e.data));
  events.addEventListener("rescanned", () => load(true));
}

// --- wiring --------------------------------------------------------------

function init() {
  let timer = null;
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const radio of document.querySelectorAll("#types input")) {
    radio.addEventListener("change", () => {
      state.type = radio.value;
      load(true);
    });
  }
  $("q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.q = $("q").value.trim();
      load(true);
    }, 200);
  });
  $("more").addEventListener("click", () => load(false));
  $("close").addEventListener("click", () => {
    history.replaceState(null, "", location.pathname + location.search);
    close();
  });
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  $("detail").addEventListener("cancel", () => {
    history.replaceState(null, "", location.pathname + location.search);
    $("media").replaceChildren();
    state.current = null;
  });
  $("detail").addEventListener("keydown", (e) => {
    if (e.target.closest("video")) return;
    if (e.key === "ArrowLeft") step(-1);
    if (e.key === "ArrowRight") step(1);
  });
  $("delete").addEventListener("click", () => {
    const info = state.current;
    if (!info) return;
    $("confirm-text").textContent =
      `Delete ${info.filename}? The file, its metadata and its catalog entry are removed for good.`;
    $("confirm").hidden = false;
    $("confirm-no").focus();
  });
  $("confirm-no").addEventListener("click", () => {
    $("confirm").hidden = true;
    $("delete").focus();
  });
  $("confirm-yes").addEventListener("click", remove);
  window.addEventListener("hashchange", route);
  load(true).then(route);
  follow();
}

init();
