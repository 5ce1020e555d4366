// Horizontal bar charts drawn as plain SVG: one row per label, one or more bars per row, the
// value written after each bar, and an optional target mark (a service level) per row. The
// caller gives the drawing's width in "points" (CSS px at 16 px a rem): with the chart's
// pixel width, text keeps the page's size whatever the screen.

import { s } from "./dom.js";

const MIN_W = 380;
const LABEL_W = 205;
const TEXT_W = 140;
const BAR_H = 15;
const GAP = 3;
const ROW_PAD = 7;

/**
 * rows: [{label, bars: [{value, text, series}], mark?: {value, text}}]; `max` the scale's end
 * (default: the largest value or mark). A bar without a number draws nothing but its text, and
 * a row without any its mark neither.
 */
export function barChart(rows, { max = null, label = "", width = 520 } = {}) {
  const W = Math.max(MIN_W, Math.round(width));
  const values = rows.flatMap((r) => [...r.bars.map((b) => b.value), r.mark?.value]);
  const top = max ?? Math.max(0, ...values.filter((v) => typeof v === "number" && Number.isFinite(v)));
  const scale = (v) => (top > 0 ? (Math.max(0, v) / top) * (W - LABEL_W - TEXT_W) : 0);
  let y = 0;
  const groups = rows.map((row) => {
    const height = row.bars.length * BAR_H + (row.bars.length - 1) * GAP;
    const g = s("g", { class: "chart-row", transform: `translate(0 ${y})`, "data-label": row.label });
    g.append(s("text", { class: "chart-label", x: LABEL_W - 8, y: height / 2 }, truncate(row.label, 24)));
    row.bars.forEach((bar, n) => {
      const by = n * (BAR_H + GAP);
      const known = typeof bar.value === "number" && Number.isFinite(bar.value);
      const width = known ? Math.max(scale(bar.value), bar.value > 0 ? 2 : 0) : 0;
      g.append(
        s("rect", { class: `chart-bar ${bar.series || ""}`.trim(), x: LABEL_W, y: by, width: width.toFixed(1),
                    height: BAR_H, rx: 2 }),
        s("text", { class: "chart-value", x: LABEL_W + width + 6, y: by + BAR_H / 2 }, bar.text));
    });
    const drawn = row.bars.some((b) => typeof b.value === "number" && Number.isFinite(b.value));
    if (drawn && row.mark && typeof row.mark.value === "number" && top > 0) {
      const x = LABEL_W + scale(Math.min(row.mark.value, top));
      g.append(s("line", { class: "chart-mark", x1: x, x2: x, y1: -3, y2: height + 3 },
        s("title", {}, row.mark.text)));
    }
    y += height + ROW_PAD * 2;
    return g;
  });
  const height = Math.max(y - ROW_PAD, 10);
  return s("svg", { class: "chart", viewBox: `0 ${-ROW_PAD / 2} ${W} ${height}`, role: "img", "aria-label": label },
    s("line", { class: "chart-axis", x1: LABEL_W, x2: LABEL_W, y1: -ROW_PAD / 2, y2: height }), ...groups);
}

function truncate(text, length) {
  const value = String(text ?? "");
  return value.length > length ? `${value.slice(0, length - 1)}…` : value;
}
