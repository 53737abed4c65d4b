// Talking to the server: the api() fetch wrapper, the act() queue that runs the page's
// actions one after another, the #message box and busy state they report through, and
// what the page keeps in localStorage.

import { $, state } from "./state.js";

const STORE = "clipbranches.";

// -- storage (a browser that refuses localStorage still works, without resuming) ---------

export function stored(key) {
  try {
    return window.localStorage.getItem(STORE + key);
  } catch {
    return null;
  }
}

export function store(key, value) {
  try {
    if (value === null) window.localStorage.removeItem(STORE + key);
    else window.localStorage.setItem(STORE + key, value);
  } catch {
    /* private mode: nothing is kept */
  }
}

// -- messages and the busy state ---------------------------------------------------------

export function showMessage(text, kind = "error") {
  const box = $("message");
  $("message-text").textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
}

export function clearMessage() {
  $("message").hidden = true;
  $("message-text").textContent = "";
  delete $("message").dataset.kind;
}

export function setBusy(delta) {
  state.busy = Math.max(0, state.busy + delta);
  document.body.dataset.busy = state.busy ? "1" : "0";
  $("busy").hidden = !state.busy;
}

export class ApiFailure extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** Call the API; a failure is shown (unless `quiet` says which statuses not to show) and thrown. */
export async function api(method, path, { json, form, quiet = [] } = {}) {
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
export function act(work) {
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
