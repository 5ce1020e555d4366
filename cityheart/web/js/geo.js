// Districts on a flat map: an equirectangular projection scaled to the city's latitude.

/** Projection of [lon, lat] to SVG units for these districts, and the drawing's size. */
export function projection(districts, width = 1000, pad = 12) {
  const points = districts.flatMap((d) => d.polygon);
  const lons = points.map((p) => p[0]);
  const lats = points.map((p) => p[1]);
  const [west, east] = [Math.min(...lons), Math.max(...lons)];
  const [south, north] = [Math.min(...lats), Math.max(...lats)];
  const k = Math.cos((((north + south) / 2) * Math.PI) / 180);
  const scale = width / (((east - west) || 1e-6) * k);
  const height = (north - south) * scale;
  const project = ([lon, lat]) => [pad + (lon - west) * k * scale, pad + (north - lat) * scale];
  return { project, width: width + 2 * pad, height: height + 2 * pad };
}

/** The SVG path of a polygon ring. */
export function ringPath(ring, project) {
  return `M${ring.map((p) => project(p).map((c) => c.toFixed(1)).join(",")).join("L")}Z`;
}

/** The projected bounding box of a ring: {x, y, width, height}. */
export function ringBox(ring, project) {
  const xy = ring.map(project);
  const xs = xy.map((p) => p[0]);
  const ys = xy.map((p) => p[1]);
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y };
}
