// Drawing the page from the state: the cards of the grid, their labels, the rounds list,
// the page and round information, timings, export links, and the focused card.

import { $, BOX_MODELS, labelOf, sessionPath, state } from "./state.js";

// -- rendering ---------------------------------------------------------------------------

export function describe(round) {
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

/** The rounds list; a click on a round is wired once, on #rounds, in keys.js. */
export function renderRounds() {
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
      li.append(button);
      return li;
    }),
  );
  $("rounds-empty").hidden = state.rounds.length > 0;
}

export function formatScore(score) {
  if (!Number.isFinite(score)) return "–";
  if (Number.isInteger(score)) return String(score);
  return Math.abs(score) >= 100 ? score.toFixed(1) : score.toFixed(3);
}

export function formatTimings(timings, total) {
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

export function makeCard(item, index) {
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

export function paintLabel(card) {
  const id = Number(card.dataset.itemId);
  const value = labelOf(id);
  card.dataset.label = value;
  for (const button of card.querySelectorAll("[data-action=positive], [data-action=negative]")) {
    button.setAttribute("aria-pressed", String(button.dataset.action === value));
  }
  const badge = card.querySelector(".badge");
  badge.textContent = value === "positive" ? "+" : value === "negative" ? "−" : "";
}

export function render() {
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

export function cards() {
  return Array.from($("grid").children);
}

export function focusedCard() {
  return cards()[state.focus] || null;
}

export function paintFocus(scroll = true) {
  for (const card of cards()) card.classList.toggle("focused", Number(card.dataset.index) === state.focus);
  const card = focusedCard();
  if (card && scroll) {
    card.scrollIntoView({ block: "nearest", inline: "nearest" });
    card.focus({ preventScroll: true });
  }
}
