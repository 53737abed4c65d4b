// Input: the keyboard shortcuts, moving the focus over the grid, and wiring every click,
// change, submit and drop of the page to its action.

import { act, clearMessage, showMessage, store } from "./api.js";
import { cards, focusedCard, paintFocus } from "./render.js";
import { cycled, goPage, label, moreLike, openCatalog, refine, search, searchFile, showRound, showRules, undo } from "./session.js";
import { $, state } from "./state.js";
import { closeOverlays, openViewer, overlayOpen } from "./viewer.js";

// -- moving the focus over the grid --------------------------------------------------------

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

export function wire() {
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
  $("rounds").addEventListener("click", (event) => {
    const button = event.target.closest("button.round");
    if (!button) return;
    const round = Number(button.dataset.round);
    act(() => ((state.focus = 0), showRound(round, 0)));
  });
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
