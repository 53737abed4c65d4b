// The clipbranches web page: search a catalog, label results, refine, page, export.
// Plain JavaScript over the server's JSON API (GET /api/openapi.json); nothing is fetched
// from anywhere but this server. Every API error is shown in #message from its
// `error.message`.
//
// The page's modules: state.js (shared state), api.js (requests, messages, the action
// queue, storage), session.js (catalogs, sessions, rounds, actions), render.js (the grid
// and panels), viewer.js (the full-size view and overlays), keys.js (keys and events).
// This one starts the page.

import { act } from "./api.js";
import { wire } from "./keys.js";
import { start } from "./session.js";

wire();
act(start).finally(() => {
  document.body.dataset.ready = "1";
});
