// Screens by URL hash: #/ is the city overview, #/district/<id> a district, #/incidents the
// incident board (#/incidents/<id> with one incident open), #/kpi the KPIs (#/kpi/<period>).
// A new screen is one more route and one more view class.

export class Router {
  /** routes: [{pattern: RegExp on the hash, view: (ctx, ...groups) => view, nav?: label}]. */
  constructor(root, routes, context) {
    this.root = root;
    this.routes = routes;
    this.context = { ...context, navigate: (hash) => { location.hash = hash; } };
    this.view = null;
    window.addEventListener("hashchange", () => this.show());
  }

  show() {
    const hash = location.hash || "#/";
    const route = this.routes.find((r) => r.pattern.test(hash)) || this.routes.at(-1);
    const groups = hash.match(route.pattern)?.slice(1).map((g) => (g === undefined ? null : decodeURIComponent(g))) || [];
    if (this.view) this.view.destroy();
    this.view = route.view(this.context, ...groups);
    this.root.replaceChildren(this.view.el);
    this.root.dataset.route = route.name;
    this.update();
    for (const link of document.querySelectorAll("[data-nav]")) {
      link.toggleAttribute("aria-current", link.dataset.nav === route.name);
    }
  }

  update() {
    if (this.view) this.view.update();
  }
}
