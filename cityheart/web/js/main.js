// The command-centre page: load /config.json, ask who is signed in, connect to the feed (with
// the token), load incidents and sparkline history, show the screens.
//
// ?feed=ws://host:port/feed overrides the feed URL config.json gives.

import { FeedConnection } from "./feed.js";
import { clockFormatter } from "./format.js";
import { h, setAttr, setText } from "./dom.js";
import { HistoryLoader } from "./history.js";
import { finishSignIn } from "./oidc.js";
import { BOARD_STATES, IncidentState } from "./incidents.js";
import { Router } from "./router.js";
import { Session } from "./session.js";
import { signInControl } from "./signin.js";
import { CityState } from "./store.js";
import { DistrictView } from "./views/district.js";
import { IncidentBoardView } from "./views/incidents.js";
import { KpiView } from "./views/kpi.js";
import { OverviewView } from "./views/overview.js";

const RENDER_EVERY_MS = 150;
const REFRESH_EVERY_MS = 5000;

const ROUTES = [
  { name: "district", pattern: /^#\/district\/([^/]+)$/, view: (ctx, id) => new DistrictView(ctx, id) },
  { name: "incidents", pattern: /^#\/incidents(?:\/([^/]+))?$/, nav: "Incidents", href: "#/incidents",
    view: (ctx, id) => new IncidentBoardView(ctx, id) },
  { name: "kpi", pattern: /^#\/kpi(?:\/([^/]+))?$/, nav: "KPIs", href: "#/kpi", hideFor: ["viewer"],
    view: (ctx, period) => new KpiView(ctx, period) },
  { name: "overview", pattern: /^#\/?$/, nav: "City overview", href: "#/", first: true,
    view: (ctx) => new OverviewView(ctx) },
];

async function main() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const config = await response.json();
  document.title = `${config.city.name} · cityheart`;
  setText(document.getElementById("city-name"), config.city.name);
  const clock = clockFormatter(config.city.timezone);
  const state = new CityState(config);
  const incidents = new IncidentState();
  const session = new Session();
  // back from the identity provider's login page: take its token before anything asks the API
  const signinProblem = config.signin
    ? await finishSignIn(config.signin).then((token) => { if (token) session.adopt(token); },
                                             (error) => error.message)
    : undefined;
  signInControl(document.getElementById("signin"), session, config.signin);
  await session.check();
  if (signinProblem) session.refused(signinProblem);

  let pending = null;
  let router = null;
  const render = () => {
    pending ??= setTimeout(() => {
      pending = null;
      router.update();
      navCount(incidents);
    }, RENDER_EVERY_MS);
  };
  const history = new HistoryLoader(config, state, render, () => session.token);
  router = new Router(document.getElementById("view"), ROUTES,
                      { config, state, clock, incidents, session, history, render });
  buildNav(document.getElementById("nav"), session);
  const badge = connectionBadge(document.getElementById("conn"), clock);
  const feedUrl = new URLSearchParams(location.search).get("feed") || config.feed.url;
  const feed = new FeedConnection({
    url: session.feedUrl(feedUrl),
    subscription: { channels: ["vitals", "alerts", "incidents"] },
    history: config.feed.backlog, // the recent backlog first: sparklines start with some past
    onMessage: (message) => {
      if (state.apply(message) || incidents.apply(message)) render();
    },
    onState: (status) => {
      badge(status);
      if (status.state === "refused" && status.detail.startsWith("unauthorized")) {
        session.refused(status.detail.replace(/^unauthorized: /, ""));
      }
    },
  });
  router.show();
  feed.start();
  session.get("api/incidents?limit=500").then((answer) => {
    incidents.load(answer);
    render();
  });
  history.loadCity();
  const clockEl = document.getElementById("clock");
  const tick = () => {
    setText(clockEl, clock.format(new Date()));
    badge(feed.status);
  };
  tick();
  setInterval(tick, 1000);
  setInterval(render, REFRESH_EVERY_MS); // times and open alerts move on without messages
  window.cityheart = { config, state, incidents, session, feed, router };
}

function buildNav(nav, session) {
  const shown = ROUTES.filter((r) => r.nav && !(r.hideFor || []).includes(session.role));
  shown.sort((a, b) => Number(Boolean(b.first)) - Number(Boolean(a.first)));
  nav.replaceChildren(...shown.map((r) =>
    h("a", { href: r.href, "data-nav": r.name }, r.nav,
      r.name === "incidents" ? h("span", { class: "nav-count", "data-role": "active-incidents" }) : null)));
}

/** The number of active incidents beside the nav's "Incidents". */
function navCount(incidents) {
  const el = document.querySelector("[data-role='active-incidents']");
  if (!el) return;
  const active = BOARD_STATES.slice(0, 3).reduce((n, s) => n + incidents.inState(s).length, 0);
  setText(el, active ? String(active) : "");
  setAttr(el, "data-count", active);
}

/** The connection badge: live / connecting / reconnecting / stale since T / refused. */
function connectionBadge(el, clock) {
  const text = el.querySelector(".conn-text");
  return (status) => {
    const since = status.since ? clock.format(new Date(status.since)) : null;
    const words = {
      connecting: "Connecting to the feed…",
      live: "Live",
      reconnecting: since ? `Reconnecting… data as of ${since}` : "Reconnecting…",
      stale: since ? `Stale since ${since} · reconnecting` : "Stale · reconnecting",
      refused: `Feed refused: ${status.detail}`,
    };
    setAttr(el, "data-state", status.state);
    setAttr(el, "data-since", status.since ? new Date(status.since).toISOString() : null);
    setAttr(el, "title", `feed epoch ${status.epoch ?? "?"}, last seq ${status.lastSeq ?? "-"}`);
    setText(text, words[status.state] || status.state);
  };
}

main().catch((error) => {
  const view = document.getElementById("view");
  view.replaceChildren(h("p", { class: "fatal" }, `The page could not start: ${error.message}`));
  console.error(error);
});
