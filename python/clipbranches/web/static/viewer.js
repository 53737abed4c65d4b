// The full-size view of the focused item and the overlays (the view, help, the rules of a
// round): opening, painting the view's label buttons, closing.

import { formatScore } from "./render.js";
import { $, labelOf, state } from "./state.js";

// -- the full-size view ------------------------------------------------------------------

function itemAt(index) {
  return state.page ? state.page.items[index] : undefined;
}

export function openViewer() {
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

export function renderViewerActions() {
  const id = Number($("viewer").dataset.itemId);
  const value = labelOf(id);
  $("viewer").dataset.label = value;
  for (const button of $("viewer-actions").querySelectorAll("[data-action=positive], [data-action=negative]")) {
    button.setAttribute("aria-pressed", String(button.dataset.action === value));
  }
}

export function closeOverlays() {
  state.viewing = false;
  for (const id of ["viewer", "help", "rules-view"]) $(id).hidden = true;
  const img = $("viewer-image");
  img.removeAttribute("src");
}

export function overlayOpen() {
  return ["viewer", "help", "rules-view"].some((id) => !$(id).hidden);
}
