// The command-centre page: load /config.json, connect to the feed, show the screens.
//
// ?feed=ws://host:port/feed overrides the feed URL config.json gives.

import { FeedConnection } from "./feed.js";
import { clockFormatter } from "./format.js";
import { h, setAttr, setText } from "./dom.js";
import { Router } from "./router.js";
import { CityState } from "./store.js";
import { DistrictView } from "./views/district.js";
import { OverviewView } from "./views/overview.js";

const RENDER_EVERY_MS = 150;
const REFRESH_EVERY_MS = 5000;

const ROUTES = [
  { name: "district", pattern: /^#\/district\/([^/]+)$/, view: (ctx, id) => new DistrictView(ctx, id) },
  { name: "overview", pattern: /^#\/?$/, nav: "City overview", view: (ctx) => new OverviewView(ctx) },
];

async function main() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const config = await response.json();
  document.title = `${config.city.name} · cityheart`;
  setText(document.getElementById("city-name"), config.city.name);
  const clock = clockFormatter(config.city.timezone);
  const state = new CityState(config);
  const router = new Router(document.getElementById("view"), ROUTES, { config, state, clock });
  buildNav(document.getElementById("nav"));

  let pending = null;
  const render = () => {
    pending ??= setTimeout(() => {
      pending = null;
      router.update();
    }, RENDER_EVERY_MS);
  };
  const badge = connectionBadge(document.getElementById("conn"), clock);
  const feedUrl = new URLSearchParams(location.search).get("feed") || config.feed.url;
  const feed = new FeedConnection({
    url: feedUrl,
    subscription: { channels: ["vitals", "alerts"] },
    history: config.feed.backlog, // the recent backlog first: sparklines start with some past
    onMessage: (message) => {
      if (state.apply(message)) render();
    },
    onState: (status) => badge(status),
  });
  router.show();
  feed.start();
  const clockEl = document.getElementById("clock");
  const tick = () => {
    setText(clockEl, clock.format(new Date()));
    badge(feed.status);
  };
  tick();
  setInterval(tick, 1000);
  setInterval(render, REFRESH_EVERY_MS); // times and open alerts move on without messages
  window.cityheart = { config, state, feed, router };
}

function buildNav(nav) {
  nav.replaceChildren(...ROUTES.filter((r) => r.nav).map((r) =>
    h("a", { href: "#/", "data-nav": r.name }, r.nav)));
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
