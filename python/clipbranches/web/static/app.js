// The clipbranches web page: search a catalog, label results, refine, page, export.
// Plain JavaScript over the server's JSON API (GET /api/openapi.json); nothing is fetched
// from anywhere but this server. Every API error is shown in #message from its
// `error.message`.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // The models whose rounds have rules (GET /api/models says so when it lists `rules`).
  const BOX_MODELS = ["branch", "ensemble"];
  const STORE = "clipbranches.";

  const state = {
    catalogs: [],
    catalog: null, // CatalogInfo
    session: null, // SessionInfo
    positives: new Set(),
    negatives: new Set(),
    rounds: [], // RoundInfo[]
    page: null, // the shown Page
    focus: 0, // index of the focused card on the page
    size: 24,
    models: null,
    busy: 0,
    viewing: false,
    trips: new Map(), // round -> ms from asking to answer, as this page measured it
  };

  // -- storage (a browser that refuses localStorage still works, without resuming) ---------

  function stored(key) {
    try {
      return window.localStorage.getItem(STORE + key);
    } catch {
      return null;
    }
  }

  function store(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(STORE + key);
      else window.localStorage.setItem(STORE + key, value);
    } catch {
      /* private mode: nothing is kept */
    }
  }

  // -- messages and the busy state ---------------------------------------------------------

  function showMessage(text, kind = "error") {
    const box = $("message");
    $("message-text").textContent = text;
    box.dataset.kind = kind;
    box.hidden = false;
  }

  function clearMessage() {
    $("message").hidden = true;
    $("message-text").textContent = "";
    delete $("message").dataset.kind;
  }

  function setBusy(delta) {
    state.busy = Math.max(0, state.busy + delta);
    document.body.dataset.busy = state.busy ? "1" : "0";
    $("busy").hidden = !state.busy;
  }

  class ApiFailure extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  /** Call the API; a failure is shown (unless `quiet` says which statuses not to show) and thrown. */
  async function api(method, path, { json, form, quiet = [] } = {}) {
    const init = { method, credentials: "same-origin", headers: { accept: "application/json" } };
    if (json !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (form !== undefined) {
      init.body = form;
    }
    setBusy(1);
    try {
      let response;
      try {
        response = await fetch(path, init);
      } catch (e) {
        const failure = new ApiFailure(`the server did not answer (${e.message || e})`, 0);
        showMessage(failure.message);
        throw failure;
      }
      const text = await response.text();
      let body = null;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      if (!response.ok) {
        const detail = body && body.error && body.error.message;
        const message = detail || `${response.status} ${response.statusText || "error"} on ${method} ${path}`;
        const failure = new ApiFailure(message, response.status);
        if (!quiet.includes(response.status)) showMessage(message);
        throw failure;
      }
      return body;
    } finally {
      setBusy(-1);
    }
  }

  /** Run an action of the page after the ones before it (a label change never overtakes the
   * one before it, a page never lands over a later one); a failure is already shown, anything
   * else unexpected is shown too. */
  let queue = Promise.resolve();
  function act(work) {
    const run = async () => {
      try {
        return await work();
      } catch (e) {
        if (!(e instanceof ApiFailure)) showMessage(`the page failed: ${e.message || e}`);
        return undefined;
      }
    };
    const result = queue.then(run);
    queue = result;
    return result;
  }

  // -- catalogs and sessions ---------------------------------------------------------------

  async function start() {
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

  async function openCatalog(name) {
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

  function setSession(info) {
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

  function labelOf(id) {
    if (state.positives.has(id)) return "positive";
    if (state.negatives.has(id)) return "negative";
    return "unlabeled";
  }

  function sessionPath(rest = "") {
    return `/api/sessions/${encodeURIComponent(state.session.id)}${rest}`;
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

  async function showRound(round, page) {
    const answer = await api("GET", sessionPath(`/rounds/${round}?page=${page}&size=${state.size}`));
    showPage(answer);
  }

  function showPage(page) {
    state.page = page;
    state.focus = Math.min(state.focus, Math.max(0, page.items.length - 1));
    render();
  }

  async function goPage(delta) {
    const page = state.page;
    if (!page) return;
    const target = page.page + delta;
    if (target < 0 || target >= page.pages) return;
    state.focus = delta > 0 ? 0 : Number.MAX_SAFE_INTEGER;
    await showRound(page.round, target);
  }

  // -- actions -----------------------------------------------------------------------------

  async function search(text) {
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

  async function moreLike(id) {
    const k = Number($("k").value) || 60;
    $("query").value = `#${id}`;
    closeOverlays();
    await newRound(api("POST", sessionPath("/search"), { json: { item: id, k, size: state.size } }));
  }

  async function searchFile(file) {
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name || "query-image");
    form.append("k", String(Number($("k").value) || 60));
    form.append("size", String(state.size));
    $("query").value = "";
    await newRound(api("POST", sessionPath("/search/upload"), { form }));
  }

  async function refine() {
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

  async function label(ids, value) {
    if (!ids.length) return;
    const info = await api("POST", sessionPath("/labels"), { json: { ids, label: value } });
    setSession(info);
  }

  function cycled(id) {
    const now = labelOf(id);
    return now === "unlabeled" ? "positive" : now === "positive" ? "negative" : "unlabeled";
  }

  async function undo(redo = false) {
    const button = $(redo ? "redo" : "undo");
    if (button.disabled) return;
    setSession(await api("POST", sessionPath(redo ? "/redo" : "/undo")));
  }

  async function showRules() {
    const page = state.page;
    if (!page) return;
    const text = await api("GET", sessionPath(`/rounds/${page.round}/rules?format=text`));
    $("rules-title").textContent = `Rules of round ${page.round} (${page.params.model})`;
    $("rules-body").textContent = text;
    closeOverlays();
    $("rules-view").hidden = false;
  }

  // -- rendering ---------------------------------------------------------------------------

  function describe(round) {
    const p = round.params || {};
    if (round.kind === "text") return `text “${p.query}”`;
    if (round.kind === "image" && p.item !== undefined && p.item !== null) return `like item ${p.item}`;
    if (round.kind === "image") return `image ${p.path || ""}`.trim();
    if (round.kind === "refine") {
      const labels = `${(p.positives || []).length}+ ${(p.negatives || []).length}−`;
      return `refine ${p.model} (${labels}, seed ${p.seed})`;
    }
    return round.kind;
  }

  function renderRounds() {
    const list = $("rounds");
    const current = state.page ? state.page.round : -1;
    list.replaceChildren(
      ...state.rounds.map((r) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "round";
        button.dataset.round = String(r.round);
        if (r.round === current) button.setAttribute("aria-current", "true");
        const title = document.createElement("span");
        title.className = "round-title";
        title.textContent = `#${r.round} ${describe(r)}`;
        const count = document.createElement("span");
        count.className = "round-count";
        count.textContent = `${r.total.toLocaleString()} items`;
        button.append(title, count);
        button.addEventListener("click", () => act(() => ((state.focus = 0), showRound(r.round, 0))));
        li.append(button);
        return li;
      }),
    );
    $("rounds-empty").hidden = state.rounds.length > 0;
  }

  function formatScore(score) {
    if (!Number.isFinite(score)) return "–";
    if (Number.isInteger(score)) return String(score);
    return Math.abs(score) >= 100 ? score.toFixed(1) : score.toFixed(3);
  }

  function formatTimings(timings, total) {
    const parts = Object.entries(timings || {})
      .filter(([, ms]) => ms > 0)
      .map(([name, ms]) => `${name} ${ms >= 100 ? ms.toFixed(0) : ms.toFixed(1)} ms`);
    if (total !== undefined) parts.push(`sum ${total.toFixed(1)} ms`);
    return parts.length ? parts.join(" · ") : "no timings recorded";
  }

  const ACTIONS = [
    ["positive", "+", "label positive (p)"],
    ["negative", "−", "label negative (n)"],
    ["clear", "○", "clear the label (x)"],
    ["more", "≈", "more like this (m)"],
  ];

  function makeCard(item, index) {
    const card = document.createElement("article");
    card.className = "card";
    card.tabIndex = -1;
    card.dataset.itemId = String(item.id);
    card.dataset.index = String(index);
    card.dataset.rank = String(item.rank);
    if (item.pinned) card.dataset.pinned = "1";
    card.setAttribute("role", "gridcell");

    const figure = document.createElement("button");
    figure.type = "button";
    figure.className = "thumb";
    figure.dataset.action = "view";
    figure.title = "full-size view (Enter)";
    const img = document.createElement("img");
    img.loading = "lazy";
    img.decoding = "async";
    img.alt = item.caption || item.name || `item ${item.id}`;
    img.src = item.thumbnail;
    figure.append(img);

    const badge = document.createElement("span");
    badge.className = "badge";
    badge.setAttribute("aria-hidden", "true");
    figure.append(badge);

    const caption = document.createElement("div");
    caption.className = "caption";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = item.name || `item ${item.id}`;
    name.title = item.caption || item.name || "";
    const rank = document.createElement("span");
    rank.className = "rank";
    rank.textContent = `#${item.rank} · ${formatScore(item.score)}${item.pinned ? " · pinned" : ""}`;
    caption.append(name, rank);

    const actions = document.createElement("div");
    actions.className = "actions";
    for (const [action, symbol, title] of ACTIONS) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = action;
      button.className = action === "positive" ? "pos" : action === "negative" ? "neg" : "";
      button.title = title;
      button.setAttribute("aria-label", `${title}: item ${item.id}`);
      button.textContent = symbol;
      actions.append(button);
    }
    card.append(figure, caption, actions);
    paintLabel(card);
    return card;
  }

  function paintLabel(card) {
    const id = Number(card.dataset.itemId);
    const value = labelOf(id);
    card.dataset.label = value;
    for (const button of card.querySelectorAll("[data-action=positive], [data-action=negative]")) {
      button.setAttribute("aria-pressed", String(button.dataset.action === value));
    }
    const badge = card.querySelector(".badge");
    badge.textContent = value === "positive" ? "+" : value === "negative" ? "−" : "";
  }

  function render() {
    const page = state.page;
    const grid = $("grid");
    $("round-panel").hidden = !page;
    renderRounds();
    if (!page) {
      grid.replaceChildren();
      $("page-info").textContent = "no results yet";
      $("prev-page").disabled = true;
      $("next-page").disabled = true;
      $("empty").hidden = true;
      document.body.dataset.round = "";
      document.body.dataset.page = "";
      return;
    }
    grid.replaceChildren(...page.items.map(makeCard));
    $("empty").hidden = page.items.length > 0;
    const first = page.total ? page.page * page.size + 1 : 0;
    const last = page.page * page.size + page.items.length;
    $("page-info").textContent =
      `page ${page.page + 1} of ${page.pages}, ${page.total.toLocaleString()} items` +
      (page.items.length ? ` (${first}–${last})` : "");
    $("prev-page").disabled = page.page <= 0;
    $("next-page").disabled = page.page + 1 >= page.pages;
    const round = state.rounds.find((r) => r.round === page.round) || page;
    $("round-info").textContent = `#${page.round} ${describe({ kind: page.kind, params: page.params })}: ${page.total.toLocaleString()} items`;
    const total = Object.values(page.timings_ms || {}).reduce((a, b) => a + b, 0);
    const trip = state.trips.get(page.round);
    $("timings").textContent =
      formatTimings(round.timings_ms || page.timings_ms, total) +
      (trip === undefined ? "" : ` · answered in ${trip.toFixed(0)} ms`);
    const base = sessionPath(`/rounds/${page.round}`);
    $("export-parquet").href = `${base}/export?format=parquet`;
    $("export-parquet").download = `round-${page.round}.parquet`;
    $("export-csv").href = `${base}/export?format=csv`;
    $("export-csv").download = `round-${page.round}.csv`;
    const ruled = (state.models && state.models.rules) || BOX_MODELS;
    const rules = page.kind === "refine" && ruled.includes(page.params.model);
    $("rules-links").hidden = !rules;
    $("rules-text").href = `${base}/rules?format=text`;
    $("rules-text").download = `round-${page.round}-rules.txt`;
    $("rules-sql").href = `${base}/rules?format=sql`;
    $("rules-sql").download = `round-${page.round}-rules.sql`;
    document.body.dataset.round = String(page.round);
    document.body.dataset.page = String(page.page);
    state.focus = Math.min(state.focus, Math.max(0, page.items.length - 1));
    paintFocus(false);
  }

  function cards() {
    return Array.from($("grid").children);
  }

  function focusedCard() {
    return cards()[state.focus] || null;
  }

  function paintFocus(scroll = true) {
    for (const card of cards()) card.classList.toggle("focused", Number(card.dataset.index) === state.focus);
    const card = focusedCard();
    if (card && scroll) {
      card.scrollIntoView({ block: "nearest", inline: "nearest" });
      card.focus({ preventScroll: true });
    }
  }

  function columns() {
    const all = cards();
    if (all.length < 2) return 1;
    const top = all[0].offsetTop;
    const same = all.findIndex((c) => c.offsetTop !== top);
    return same < 0 ? all.length : same;
  }

  function move(dx, dy) {
    const all = cards();
    if (!all.length) return;
    const step = dx + dy * columns();
    state.focus = Math.max(0, Math.min(all.length - 1, state.focus + step));
    paintFocus();
    if (state.viewing) openViewer();
  }

  // -- the full-size view ------------------------------------------------------------------

  function itemAt(index) {
    return state.page ? state.page.items[index] : undefined;
  }

  function openViewer() {
    const item = itemAt(state.focus);
    if (!item) return;
    closeOverlays();
    const img = $("viewer-image");
    img.dataset.fallback = item.thumbnail;
    img.dataset.itemId = String(item.id);
    img.alt = item.caption || item.name || `item ${item.id}`;
    img.src = item.image;
    $("viewer-title").textContent = item.name || `item ${item.id}`;
    const rows = [
      ["id", item.id],
      ["name", item.name],
      ["caption", item.caption],
      ["size", item.width && item.height ? `${item.width} × ${item.height}` : null],
      ["rank", `${item.rank} of ${state.page.total.toLocaleString()}`],
      ["score", formatScore(item.score)],
      ["pinned", item.pinned ? "yes (a labelled positive)" : null],
      ...Object.entries(item.meta || {}),
    ];
    const meta = $("viewer-meta");
    meta.replaceChildren();
    for (const [key, value] of rows) {
      if (value === null || value === undefined || value === "") continue;
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      dd.dataset.field = key;
      meta.append(dt, dd);
    }
    state.viewing = true;
    $("viewer").hidden = false;
    $("viewer").dataset.itemId = String(item.id);
    renderViewerActions();
  }

  function renderViewerActions() {
    const id = Number($("viewer").dataset.itemId);
    const value = labelOf(id);
    $("viewer").dataset.label = value;
    for (const button of $("viewer-actions").querySelectorAll("[data-action=positive], [data-action=negative]")) {
      button.setAttribute("aria-pressed", String(button.dataset.action === value));
    }
  }

  function closeOverlays() {
    state.viewing = false;
    for (const id of ["viewer", "help", "rules-view"]) $(id).hidden = true;
    const img = $("viewer-image");
    img.removeAttribute("src");
  }

  function overlayOpen() {
    return ["viewer", "help", "rules-view"].some((id) => !$(id).hidden);
  }

  // -- events ------------------------------------------------------------------------------

  function cardAction(card, action) {
    const id = Number(card.dataset.itemId);
    state.focus = Number(card.dataset.index);
    paintFocus(false);
    if (action === "view") return openViewer();
    if (action === "more") return act(() => moreLike(id));
    const value = action === "clear" ? "unlabeled" : action;
    return act(() => label([id], value));
  }

  function labelFocused(value) {
    const card = focusedCard();
    if (!card) return;
    const id = Number(card.dataset.itemId);
    act(() => label([id], value === "cycle" ? cycled(id) : value));
  }

  function labelPage(value) {
    const ids = cards().map((c) => Number(c.dataset.itemId));
    act(() => label(ids, value));
  }

  function typing(target) {
    return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));
  }

  function onKey(event) {
    const key = event.key;
    if (event.altKey || event.metaKey) return;
    if (key === "Escape") {
      if (overlayOpen()) {
        closeOverlays();
        paintFocus();
      } else if (typing(event.target)) event.target.blur();
      else clearMessage();
      event.preventDefault();
      return;
    }
    if (typing(event.target)) return;
    const ctrl = event.ctrlKey;
    if (ctrl) {
      const lower = key.toLowerCase();
      if (lower === "z" && event.shiftKey) act(() => undo(true));
      else if (lower === "z") act(() => undo(false));
      else if (lower === "y") act(() => undo(true));
      else return;
      event.preventDefault();
      return;
    }
    if (key === "?" || key === "F1") {
      const open = !$("help").hidden;
      closeOverlays();
      $("help").hidden = open;
      event.preventDefault();
      return;
    }
    if (!$("help").hidden || !$("rules-view").hidden) return;
    // Keys below work in the grid and in the full-size view.
    const handled = (() => {
      switch (key) {
        case "ArrowLeft":
        case "h":
          move(-1, 0);
          return true;
        case "ArrowRight":
        case "l":
          move(1, 0);
          return true;
        case "ArrowUp":
        case "k":
          if (!state.viewing) move(0, -1);
          return true;
        case "ArrowDown":
        case "j":
          if (!state.viewing) move(0, 1);
          return true;
        case "Home":
          state.focus = 0;
          paintFocus();
          return true;
        case "End":
          state.focus = Math.max(0, cards().length - 1);
          paintFocus();
          return true;
        case "p":
          labelFocused("positive");
          return true;
        case "n":
          labelFocused("negative");
          return true;
        case "x":
        case "c":
          labelFocused("unlabeled");
          return true;
        case " ":
          labelFocused("cycle");
          return true;
        case "m": {
          const card = focusedCard();
          if (card) act(() => moreLike(Number(card.dataset.itemId)));
          return true;
        }
        case "u":
          act(() => undo(false));
          return true;
        case "U":
          act(() => undo(true));
          return true;
        default:
          return false;
      }
    })();
    if (handled) {
      event.preventDefault();
      return;
    }
    if (state.viewing) {
      if (key === "v" || key === "q" || key === "Enter") {
        closeOverlays();
        paintFocus();
        event.preventDefault();
      }
      return;
    }
    switch (key) {
      case "Enter":
      case "v":
        if (event.target instanceof HTMLButtonElement || event.target instanceof HTMLAnchorElement) return;
        openViewer();
        break;
      case "P":
        labelPage("positive");
        break;
      case "N":
        labelPage("negative");
        break;
      case "X":
        labelPage("unlabeled");
        break;
      case "f":
        act(refine);
        break;
      case "r":
        if (!$("rules-links").hidden) act(showRules);
        else showMessage("only a refine round of a box model (branch, ensemble) has rules", "info");
        break;
      case "e":
        if (state.page) $("export-parquet").focus();
        else showMessage("nothing to export yet: search first", "info");
        break;
      case "o":
        $("model").focus();
        break;
      case "/":
        $("query").focus();
        $("query").select();
        break;
      case "]":
      case "PageDown":
        act(() => goPage(1));
        break;
      case "[":
      case "PageUp":
        act(() => goPage(-1));
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  function wire() {
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      act(() => search($("query").value));
    });
    $("refine-form").addEventListener("submit", (event) => {
      event.preventDefault();
      act(refine);
    });
    $("upload").addEventListener("change", () => {
      const file = $("upload").files[0];
      act(() => searchFile(file)).finally(() => ($("upload").value = ""));
    });
    $("undo").addEventListener("click", () => act(() => undo(false)));
    $("redo").addEventListener("click", () => act(() => undo(true)));
    $("prev-page").addEventListener("click", () => act(() => goPage(-1)));
    $("next-page").addEventListener("click", () => act(() => goPage(1)));
    $("page-size").addEventListener("change", () => {
      state.size = Number($("page-size").value);
      store("size", String(state.size));
      state.focus = 0;
      if (state.page) act(() => showRound(state.page.round, 0));
    });
    $("catalog").addEventListener("change", () => act(() => openCatalog($("catalog").value)));
    $("message-close").addEventListener("click", clearMessage);
    $("help-button").addEventListener("click", () => {
      closeOverlays();
      $("help").hidden = false;
    });
    for (const id of ["help-close", "viewer-close", "rules-close"]) {
      $(id).addEventListener("click", () => {
        closeOverlays();
        paintFocus();
      });
    }
    for (const id of ["viewer", "help", "rules-view"]) {
      $(id).addEventListener("click", (event) => {
        if (event.target === $(id)) closeOverlays(); // a click beside the panel
      });
    }
    $("show-rules").addEventListener("click", () => act(showRules));
    $("grid").addEventListener("click", (event) => {
      const button = event.target.closest("[data-action]");
      const card = event.target.closest(".card");
      if (button && card) cardAction(card, button.dataset.action);
    });
    $("viewer-actions").addEventListener("click", (event) => {
      const button = event.target.closest("[data-action]");
      const card = focusedCard();
      if (!button || !card) return;
      if (button.dataset.action === "more") act(() => moreLike(Number(card.dataset.itemId)));
      else labelFocused(button.dataset.action === "clear" ? "unlabeled" : button.dataset.action);
    });
    $("viewer-image").addEventListener("error", () => {
      const img = $("viewer-image");
      // The original is not a file on the server (e.g. a URL catalog): show the thumbnail.
      if (img.dataset.fallback && img.getAttribute("src") !== img.dataset.fallback) {
        img.src = img.dataset.fallback;
        img.classList.add("fallback");
      }
    });
    $("viewer-image").addEventListener("load", () => {
      const img = $("viewer-image");
      img.classList.toggle("fallback", img.getAttribute("src") === img.dataset.fallback);
    });
    document.addEventListener("keydown", onKey);
    document.addEventListener("dragover", (event) => {
      if (event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files")) {
        event.preventDefault();
        document.body.classList.add("dropping");
      }
    });
    document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
    document.addEventListener("drop", (event) => {
      document.body.classList.remove("dropping");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (!file) return;
      event.preventDefault();
      if ($("upload").disabled) showMessage("this catalog has no image encoder: search by #ID instead", "info");
      else act(() => searchFile(file));
    });
  }

  wire();
  act(start).finally(() => {
    document.body.dataset.ready = "1";
  });
})();
