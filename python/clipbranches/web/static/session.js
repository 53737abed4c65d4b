// The page's work with the server: catalogs and sessions, rounds and pages, and the
// actions (search, more like, search by file, refine, label, undo/redo, rules).

import { ApiFailure, api, clearMessage, showMessage, store, stored } from "./api.js";
import { paintLabel, render, renderRounds } from "./render.js";
import { $, labelOf, sessionPath, state } from "./state.js";
import { closeOverlays, renderViewerActions } from "./viewer.js";

// -- catalogs and sessions ---------------------------------------------------------------

export async function start() {
  state.size = Number(stored("size")) || state.size;
  $("page-size").value = String(state.size);
  if ($("page-size").value !== String(state.size)) {
    const option = document.createElement("option");
    option.textContent = String(state.size);
    $("page-size").append(option);
    $("page-size").value = String(state.size);
  }
  const [catalogs, models] = await Promise.all([api("GET", "/api/catalogs"), api("GET", "/api/models")]);
  state.catalogs = catalogs;
  setModels(models);
  const select = $("catalog");
  select.replaceChildren(
    ...catalogs.map((c) => {
      const option = document.createElement("option");
      option.value = c.name;
      option.textContent = `${c.name} (${c.items.toLocaleString()} items)`;
      return option;
    }),
  );
  $("catalog-pick").hidden = catalogs.length < 2;
  if (!catalogs.length) {
    showMessage("this server serves no catalog");
    return;
  }
  const remembered = stored("catalog");
  const first = catalogs.find((c) => c.name === remembered) || catalogs[0];
  select.value = first.name;
  await openCatalog(first.name);
}

function setModels(models) {
  state.models = models;
  const select = $("model");
  select.replaceChildren(
    ...models.models.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name === models.default ? `${name} (default)` : name;
      return option;
    }),
  );
  select.value = stored("model") || models.default;
  if (!select.value) select.value = models.default;
  for (const [id, range] of [
    ["random-negatives", models.random_negatives],
    ["negative-weight", models.negative_weight],
  ]) {
    const input = $(id);
    input.min = range.min;
    input.max = range.max;
    input.value = range.default;
    input.placeholder = String(range.default);
  }
}

export async function openCatalog(name) {
  const catalog = state.catalogs.find((c) => c.name === name);
  state.catalog = catalog;
  store("catalog", name);
  $("catalog-name").textContent = state.catalogs.length < 2 ? `${catalog.name} · ${catalog.items.toLocaleString()} items` : "";
  const canEncode = Boolean(catalog.encoder);
  $("upload").disabled = !canEncode;
  $("upload-label").classList.toggle("disabled", !canEncode);
  $("query").placeholder = canEncode
    ? "Search by text, or #ID for items like one (/)"
    : "#ID: items like catalog item ID (this catalog has no text encoder)";
  let session = null;
  const saved = stored(`session.${name}`);
  if (saved) {
    try {
      session = await api("GET", `/api/sessions/${encodeURIComponent(saved)}`, { quiet: [404] });
    } catch (e) {
      if (!(e instanceof ApiFailure) || e.status !== 404) throw e;
      session = null; // forgotten by the server: start afresh
    }
  }
  if (!session) {
    session = await api("POST", "/api/sessions", { json: { catalog: name } });
    store(`session.${name}`, session.id);
  }
  setSession(session);
  state.page = null;
  state.trips = new Map();
  await loadRounds();
  if (state.rounds.length) await showRound(state.rounds.length - 1, 0);
  else render();
}

export function setSession(info) {
  state.session = info;
  state.positives = new Set(info.positives);
  state.negatives = new Set(info.negatives);
  $("undo").disabled = !info.can_undo;
  $("redo").disabled = !info.can_redo;
  $("refine").disabled = !info.positives.length;
  const p = info.positives.length;
  const n = info.negatives.length;
  $("labels-summary").textContent = p || n ? `${p} positive · ${n} negative` : "no labels";
  document.body.dataset.positives = String(p);
  document.body.dataset.negatives = String(n);
  document.body.dataset.session = info.id;
  for (const card of $("grid").children) paintLabel(card);
  if (state.viewing) renderViewerActions();
}

// -- rounds and pages --------------------------------------------------------------------

async function loadRounds() {
  state.rounds = await api("GET", sessionPath("/rounds"));
  renderRounds();
}

async function newRound(promise) {
  const asked = performance.now();
  const page = await promise;
  state.trips.set(page.round, performance.now() - asked);
  clearMessage();
  state.focus = 0;
  showPage(page);
  await loadRounds();
}

export async function showRound(round, page) {
  const answer = await api("GET", sessionPath(`/rounds/${round}?page=${page}&size=${state.size}`));
  showPage(answer);
}

function showPage(page) {
  state.page = page;
  state.focus = Math.min(state.focus, Math.max(0, page.items.length - 1));
  render();
}

export async function goPage(delta) {
  const page = state.page;
  if (!page) return;
  const target = page.page + delta;
  if (target < 0 || target >= page.pages) return;
  state.focus = delta > 0 ? 0 : Number.MAX_SAFE_INTEGER;
  await showRound(page.round, target);
}

// -- actions -----------------------------------------------------------------------------

export async function search(text) {
  const query = text.trim();
  if (!query) {
    showMessage("type what to search for (or #ID for items like a catalog item)", "info");
    return;
  }
  const k = Number($("k").value) || 60;
  const byItem = /^#\s*(\d+)$/.exec(query);
  const body = byItem ? { item: Number(byItem[1]), k, size: state.size } : { query, k, size: state.size };
  await newRound(api("POST", sessionPath("/search"), { json: body }));
}

export async function moreLike(id) {
  const k = Number($("k").value) || 60;
  $("query").value = `#${id}`;
  closeOverlays();
  await newRound(api("POST", sessionPath("/search"), { json: { item: id, k, size: state.size } }));
}

export async function searchFile(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name || "query-image");
  form.append("k", String(Number($("k").value) || 60));
  form.append("size", String(state.size));
  $("query").value = "";
  await newRound(api("POST", sessionPath("/search/upload"), { form }));
}

export async function refine() {
  if (!state.positives.size) {
    showMessage("label at least one item positive before refining", "info");
    return;
  }
  const body = { model: $("model").value, size: state.size };
  const number = (id) => {
    const raw = $(id).value.trim();
    return raw === "" ? null : Number(raw);
  };
  const rn = number("random-negatives");
  const nw = number("negative-weight");
  const seed = number("seed");
  if (rn !== null) body.random_negatives = rn;
  if (nw !== null) body.negative_weight = nw;
  if (seed !== null) body.seed = seed;
  store("model", body.model);
  await newRound(api("POST", sessionPath("/refine"), { json: body }));
}

export async function label(ids, value) {
  if (!ids.length) return;
  const info = await api("POST", sessionPath("/labels"), { json: { ids, label: value } });
  setSession(info);
}

export function cycled(id) {
  const now = labelOf(id);
  return now === "unlabeled" ? "positive" : now === "positive" ? "negative" : "unlabeled";
}

export async function undo(redo = false) {
  const button = $(redo ? "redo" : "undo");
  if (button.disabled) return;
  setSession(await api("POST", sessionPath(redo ? "/redo" : "/undo")));
}

export async function showRules() {
  const page = state.page;
  if (!page) return;
  const text = await api("GET", sessionPath(`/rounds/${page.round}/rules?format=text`));
  $("rules-title").textContent = `Rules of round ${page.round} (${page.params.model})`;
  $("rules-body").textContent = text;
  closeOverlays();
  $("rules-view").hidden = false;
}
