// memomentum review: the page. Everything is asked of the server (filters, order, pages);
// the page holds one page of examples, the selection and the undo stack.
"use strict";

const $ = (id) => document.getElementById(id);
const PAGE = 48;
const state = { meta: null, items: [], total: 0, offset: 0, focus: 0, selected: new Set(), anchor: null, undo: [],
  query: { suspects: "1", given: "", predicted: "", state: "any", sort: "rank", q: "" }, chooserFor: null };

// The token came in the URL once; the server set a cookie, so the URL can forget it.
if (location.search.includes("token=")) history.replaceState(null, "", location.pathname);

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) };
  const r = await fetch(path, { credentials: "same-origin", ...init });
  const data = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok || data.error) throw new Error(data.error || `${r.status}`);
  return data;
}

function toast(text, error) {
  const t = $("toast");
  t.textContent = text;
  t.className = error ? "toast error" : "toast";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, error ? 8000 : 3500);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const pct = (v) => `${Math.round(v * 100)}%`;

async function start() {
  state.meta = await api("/api/meta");
  const m = state.meta;
  $("run").textContent = `${m.run_dirs.join(", ")} · ${m.dataset} · ${m.n.toLocaleString()} examples, ` +
    `${m.n_issues.toLocaleString()} suspects` + (m.consensus ? ` · consensus of ${m.run_dirs.length} runs` : "");
  for (const id of ["f-given", "f-predicted"]) {
    m.classes.forEach((name, k) => $(id).append(el("option", { value: String(k) }, name)));
  }
  $("export-path").value = m.export_default;
  if (m.kind !== "images") $("grid").classList.add("rows");
  drawConfusion();
  counts(m.counts);
  await load();
}

function drawConfusion() {
  const m = state.meta, names = m.classes;
  const head = el("tr", {}, el("th", {}, ""));
  names.forEach((n) => head.append(el("th", { title: `predicted ${n}` }, n)));
  const table = el("table", {}, head);
  m.confusion.forEach((row, g) => {
    const tr = el("tr", {}, el("th", { title: `given ${names[g]}` }, names[g]));
    row.forEach((count, p) => {
      const cls = count === 0 ? "zero" : g === p ? "diag" : "off";
      const td = el("td", { class: cls, title: `given ${names[g]}, predicted ${names[p]}: ${count}`,
        "data-cell": `${g},${p}` }, String(count));
      if (count) td.addEventListener("click", () => pickCell(g, p));
      tr.append(td);
    });
    table.append(tr);
  });
  $("confusion").replaceChildren(table);
}

function pickCell(g, p) {
  Object.assign(state.query, { given: String(g), predicted: String(p), suspects: "" });
  syncFilters();
  reload();
}

function syncFilters() {
  const q = state.query;
  $("f-suspects").checked = q.suspects === "1";
  $("f-given").value = q.given; $("f-predicted").value = q.predicted;
  $("f-state").value = q.state; $("f-sort").value = q.sort; $("f-search").value = q.q;
  document.querySelectorAll(".confusion td").forEach((td) =>
    td.classList.toggle("on", td.dataset.cell === `${q.given},${q.predicted}`));
}

function counts(c) {
  $("counter").textContent = `reviewed ${c.reviewed.toLocaleString()} · remaining ${c.remaining.toLocaleString()}` +
    ` (suspects: ${c.suspects_remaining.toLocaleString()})`;
}

function reload() { state.offset = 0; state.focus = 0; state.selected.clear(); return load(); }

async function load() {
  const params = new URLSearchParams({ ...state.query, offset: state.offset, limit: PAGE });
  const seq = (state.seq = (state.seq || 0) + 1);
  const data = await api(`/api/examples?${params}`);
  if (seq !== state.seq) return; // an answer overtaken by a later question (typing in the search)
  state.items = data.items; state.total = data.total;
  state.focus = Math.min(state.focus, Math.max(0, state.items.length - 1));
  counts(data.counts);
  render();
}

function render() {
  const grid = $("grid");
  grid.replaceChildren(...state.items.map(card));
  $("empty").hidden = state.items.length > 0;
  const end = state.offset + state.items.length;
  $("range").textContent = state.total ? `${state.offset + 1}–${end} of ${state.total.toLocaleString()}` : "0 of 0";
  $("prev").disabled = state.offset === 0; $("next").disabled = end >= state.total;
  showSelection();
  markFocus();
}

function card(item, i) {
  const m = state.meta;
  const c = el("div", { class: `card${item.decision ? " d-" + item.decision : ""}`, "data-index": String(item.index) });
  c.addEventListener("click", (e) => clickCard(e, i));
  if (m.kind === "images") {
    const img = el("img", { alt: item.file || `example ${item.index}`, loading: "lazy",
      src: `/thumb/${item.index}` });
    img.addEventListener("error", () => img.replaceWith("no image"));
    c.append(el("div", { class: "thumb" }, img));
  } else if (item.features) {
    c.append(features(item.features));
  } else {
    c.append(el("div", { class: "thumb none" }, "no data to show: the run's data are not readable here"));
  }
  const name = item.file ? `${item.folder}/${item.file}` : item.row !== undefined ? `row ${item.row}` : "";
  c.append(el("div", { class: "name", title: name }, `#${item.index}${name ? " · " + name : ""}`));
  c.append(labels(item), actions(i));
  if (item.decision) c.append(el("span", { class: "badge" }, badge(item)));
  return c;
}

function features(values) {
  const cols = state.meta.feature_columns;
  const head = el("tr", {}, ...cols.slice(0, values.length).map((n) => el("th", {}, n)));
  const row = el("tr", {}, ...values.map((v) => el("td", {}, v === null ? "" : String(v))));
  return el("div", { class: "features" }, el("table", {}, head, row));
}

function labels(item) {
  const dl = el("dl", { class: "labels" },
    el("dt", {}, "given"), el("dd", { class: `given${item.issue ? " wrong" : ""}` }, item.given),
    el("dt", {}, "model"), el("dd", {}, `${item.predicted} (${pct(item.confidence)})`));
  if (state.meta.has_true) dl.append(el("dt", {}, "true"), el("dd", {}, item.true === null ? "?" : item.true));
  if (item.share !== undefined) dl.append(el("dt", {}, "runs"), el("dd", {}, `${pct(item.share)} call it an issue`));
  return dl;
}

function actions(i) {
  const b = (text, what, title) => el("button", { type: "button", title, "data-act": what,
    onclick: (e) => { e.stopPropagation(); state.focus = i; act(what, [i]); } }, text);
  return el("div", { class: "actions" }, b("✓ model", "accept", "accept the model's label (a)"),
    b("keep", "keep", "keep the given label (g)"), b("class…", "relabel", "choose another class (c)"),
    b("✕", "exclude", "exclude the example (x)"));
}

function badge(item) {
  if (item.decision === "exclude") return "excluded";
  if (item.decision === "keep") return "kept";
  return `→ ${item.label}`;
}

function clickCard(e, i) {
  if (e.shiftKey && state.anchor !== null) {
    const [a, b] = [Math.min(state.anchor, i), Math.max(state.anchor, i)];
    for (let k = a; k <= b; k++) state.selected.add(state.items[k].index);
  } else if (e.ctrlKey || e.metaKey) {
    toggle(i);
  } else {
    state.anchor = i;
  }
  state.focus = i;
  showSelection();
  markFocus();
}

function toggle(i) {
  const idx = state.items[i].index;
  if (state.selected.has(idx)) state.selected.delete(idx); else state.selected.add(idx);
  state.anchor = i;
}

function showSelection() {
  document.querySelectorAll(".card").forEach((c) => c.classList.toggle("selected",
    state.selected.has(Number(c.dataset.index))));
  const n = state.selected.size;
  $("selection").textContent = n ? `${n} selected (Esc: none)`
    : "keys act on the outlined card";
}

function markFocus() {
  document.querySelectorAll(".card").forEach((c, i) => c.classList.toggle("focus", i === state.focus));
  const f = document.querySelectorAll(".card")[state.focus];
  if (f) f.scrollIntoView({ block: "nearest" });
}

// The examples a decision applies to: the selection, else the given cards (the focused one).
function targets(fallback) {
  if (state.selected.size) return [...state.selected];
  return fallback.filter((i) => state.items[i]).map((i) => state.items[i].index);
}

async function act(what, fallback) {
  const indices = targets(fallback);
  if (!indices.length) return;
  if (what === "relabel") return openChooser(indices);
  await decide({ indices, decision: what });
}

async function decide(body) {
  try {
    const data = await api("/api/decide", body);
    state.undo.push(data.before);
    applyStates(data.items);
    counts(data.counts);
    if (!state.selected.size && body.indices && body.indices.length === 1) moveFocus(1);
    state.selected.clear();
    showSelection();
  } catch (e) { toast(e.message, true); }
}

function applyStates(states) {
  const byIndex = new Map(states.map((s) => [s.index, s]));
  state.items.forEach((item, i) => {
    const s = byIndex.get(item.index);
    if (!s) return;
    Object.assign(item, s);
    const old = document.querySelectorAll(".card")[i];
    old.replaceWith(card(item, i));
  });
  markFocus();
}

async function undo() {
  const before = state.undo.pop();
  if (!before) return toast("nothing to undo");
  try {
    const data = await api("/api/decide", { restore: before });
    applyStates(data.items);
    counts(data.counts);
    toast(`undone (${before.length} example${before.length > 1 ? "s" : ""})`);
  } catch (e) { toast(e.message, true); }
}

function moveFocus(step) {
  const next = state.focus + step;
  if (next >= state.items.length && state.offset + state.items.length < state.total) return page(1);
  if (next < 0 && state.offset > 0) return page(-1, true);
  state.focus = Math.max(0, Math.min(state.items.length - 1, next));
  markFocus();
}

async function page(step, toEnd) {
  const offset = state.offset + step * PAGE;
  if (offset < 0 || offset >= state.total) return;
  state.offset = offset; state.focus = toEnd ? PAGE - 1 : 0; state.selected.clear();
  await load();
}

// -- the class chooser: type to find a class, Enter or a click picks it
function openChooser(indices) {
  state.chooserFor = indices;
  $("chooser-title").textContent = `Choose the class of ${indices.length} example${indices.length > 1 ? "s" : ""}`;
  $("chooser").hidden = false;
  $("chooser-input").value = "";
  fillChooser();
  $("chooser-input").focus();
}

function matches(text) {
  const t = text.trim().toLowerCase(), names = state.meta.classes;
  if (!t) return names.slice();
  const starts = names.filter((n) => n.toLowerCase().startsWith(t));
  return starts.concat(names.filter((n) => !n.toLowerCase().startsWith(t) && n.toLowerCase().includes(t)));
}

function fillChooser() {
  const list = matches($("chooser-input").value);
  $("chooser-list").replaceChildren(...list.map((n, i) => el("li", { class: i === 0 ? "on" : "", "data-class": n,
    onmousedown: (e) => { e.preventDefault(); pick(n); } }, n)));
}

function chooserKey(e) {
  const items = [...document.querySelectorAll("#chooser-list li")];
  let on = items.findIndex((li) => li.classList.contains("on"));
  if (e.key === "Escape") { closeChooser(); return; }
  if (e.key === "Enter") { if (items[on]) pick(items[on].dataset.class); e.preventDefault(); return; }
  if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
  e.preventDefault();
  on = Math.max(0, Math.min(items.length - 1, on + (e.key === "ArrowDown" ? 1 : -1)));
  items.forEach((li, i) => li.classList.toggle("on", i === on));
  if (items[on]) items[on].scrollIntoView({ block: "nearest" });
}

function closeChooser() { $("chooser").hidden = true; $("grid").focus(); }

function pick(name) {
  const indices = state.chooserFor;
  closeChooser();
  decide({ indices, decision: "relabel", label: name });
}

// -- export
async function doExport() {
  try {
    const data = await api("/api/export", { out: $("export-path").value });
    $("exporter").hidden = true;
    toast(data.message);
  } catch (e) { toast(e.message, true); }
}

function onKey(e) {
  if (!$("chooser").hidden || !$("exporter").hidden) return;
  if (e.target.matches("input, select, textarea")) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  if (e.ctrlKey && e.key === "z") { e.preventDefault(); return undo(); }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const keys = {
    a: () => act("accept", [state.focus]), g: () => act("keep", [state.focus]),
    c: () => act("relabel", [state.focus]), x: () => act("exclude", [state.focus]), u: undo,
    ArrowRight: () => moveFocus(1), j: () => moveFocus(1), ArrowLeft: () => moveFocus(-1), k: () => moveFocus(-1),
    ArrowDown: () => moveFocus(columns()), ArrowUp: () => moveFocus(-columns()),
    " ": () => { if (state.items[state.focus]) { toggle(state.focus); showSelection(); } },
    n: () => page(1), p: () => page(-1), "/": () => $("f-search").focus(),
    Escape: () => { state.selected.clear(); showSelection(); },
  };
  const run = keys[e.key];
  if (!run) return;
  e.preventDefault();
  run();
}

function columns() {
  const cards = [...document.querySelectorAll(".card")];
  if (cards.length < 2) return 1;
  const top = cards[0].offsetTop;
  const n = cards.findIndex((c) => c.offsetTop !== top);
  return n < 0 ? cards.length : n;
}

function wire() {
  let typing = null;
  const bind = (id, key, ev) => $(id).addEventListener(ev || "change", () => {
    state.query[key] = id === "f-suspects" ? ($(id).checked ? "1" : "") : $(id).value;
    syncFilters();
    clearTimeout(typing); // the search asks once typing pauses
    if (ev === "input") typing = setTimeout(reload, 250); else reload();
  });
  bind("f-suspects", "suspects"); bind("f-given", "given"); bind("f-predicted", "predicted");
  bind("f-state", "state"); bind("f-sort", "sort"); bind("f-search", "q", "input");
  $("f-clear").addEventListener("click", () => {
    state.query = { suspects: "", given: "", predicted: "", state: "any", sort: "rank", q: "" };
    syncFilters(); reload();
  });
  document.querySelectorAll("[data-bulk]").forEach((b) => b.addEventListener("click",
    () => act(b.dataset.bulk, [state.focus])));
  $("undo").addEventListener("click", undo);
  $("prev").addEventListener("click", () => page(-1));
  $("next").addEventListener("click", () => page(1));
  $("chooser-input").addEventListener("input", fillChooser);
  $("chooser-input").addEventListener("keydown", chooserKey);
  $("chooser").addEventListener("click", (e) => { if (e.target === $("chooser")) closeChooser(); });
  $("export-open").addEventListener("click", () => { $("exporter").hidden = false; $("export-path").focus(); });
  $("export-cancel").addEventListener("click", () => { $("exporter").hidden = true; });
  $("export-go").addEventListener("click", doExport);
  document.addEventListener("keydown", onKey);
}

wire();
start().catch((e) => toast(`cannot load the review: ${e.message}`, true));
