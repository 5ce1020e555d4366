// Sparklines drawn as plain SVG: a line over time with a faint area under it.

import { s } from "./dom.js";

const W = 100;
const H = 30;
const PAD = 2.5;

/** An empty sparkline element; draw into it with drawSpark(). */
export function sparkSvg(className = "spark") {
  return s("svg", { class: className, viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none",
                    "aria-hidden": "true" },
    s("path", { class: "spark-area" }),
    s("line", { class: "spark-threshold", x1: 0, x2: W, y1: 0, y2: 0, visibility: "hidden" }),
    s("path", { class: "spark-line" }));
}

/**
 * Draw points [{t, v}] (oldest first) spread over time; `threshold` (a number) is drawn as a
 * dashed line when it lies within reach of the data.
 */
export function drawSpark(svg, points, { threshold = null } = {}) {
  const [area, line, path] = svg.children;
  svg.dataset.points = String(points.length);
  if (!points.length) {
    path.setAttribute("d", "");
    area.setAttribute("d", "");
    line.setAttribute("visibility", "hidden");
    return;
  }
  let lo = Math.min(...points.map((p) => p.v));
  let hi = Math.max(...points.map((p) => p.v));
  const span0 = hi - lo || Math.abs(hi) * 0.1 || 1;
  const near = typeof threshold === "number" && threshold >= lo - span0 && threshold <= hi + span0;
  if (near) {
    lo = Math.min(lo, threshold);
    hi = Math.max(hi, threshold);
  }
  const span = hi - lo || Math.abs(hi) * 0.1 || 1;
  const t0 = points[0].t;
  const t1 = points.at(-1).t;
  const x = (t) => (t1 === t0 ? W : ((t - t0) / (t1 - t0)) * W);
  const y = (v) => PAD + (1 - (v - (lo - span * 0.08)) / (span * 1.16)) * (H - 2 * PAD);
  const coords = points.map((p) => `${x(p.t).toFixed(2)},${y(p.v).toFixed(2)}`);
  if (points.length === 1) coords.unshift(`0,${y(points[0].v).toFixed(2)}`);
  path.setAttribute("d", `M${coords.join("L")}`);
  area.setAttribute("d", `M${coords[0].split(",")[0]},${H}L${coords.join("L")}L${W},${H}Z`);
  line.setAttribute("visibility", near ? "visible" : "hidden");
  if (near) {
    line.setAttribute("y1", y(threshold).toFixed(2));
    line.setAttribute("y2", y(threshold).toFixed(2));
  }
}
