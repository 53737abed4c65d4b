// The page's shared state and the small lookups every module uses: `$` for an element by
// id, what label an item has, the API path of the open session. No DOM work, no requests.

export const $ = (id) => document.getElementById(id);
// The models whose rounds have rules (GET /api/models says so when it lists `rules`).
export const BOX_MODELS = ["branch", "ensemble"];

export const state = {
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

export function labelOf(id) {
  if (state.positives.has(id)) return "positive";
  if (state.negatives.has(id)) return "negative";
  return "unlabeled";
}

export function sessionPath(rest = "") {
  return `/api/sessions/${encodeURIComponent(state.session.id)}${rest}`;
}
