// Levels: every vital and indicator read on one scale of four ranks, healthiest first.
//
// rank 0 "ok", 1 "watch", 2 "warning", 3 "critical" (-1: no data). A vital's rank comes from its
// kind's thresholds in config (the statistic the threshold rule watches, against warning and
// critical); an indicator's from its own level's position among the indicator's level names
// (config.indicators), the AQI's level number, or failing those its 0-100 sub-score.

export const RANKS = ["ok", "watch", "warning", "critical"];
/** How a rank reads on the map and in headlines. */
export const RANK_TEXT = ["Normal", "Elevated", "Warning", "Critical"];
export const NO_DATA = "none";
export const HEALTH_INDICATORS = ["health_score", "score"];

/** The CSS level name of a rank. */
export function rankName(rank) {
  return rank >= 0 ? RANKS[Math.min(rank, 3)] : NO_DATA;
}

/** A vital's statistic, rank, level text and how bad it is (for picking the worst). */
export function vitalLevel(config, vital) {
  const kind = config.kinds[vital.kind];
  const t = kind?.thresholds;
  const stat = t?.stat || "mean";
  const value = vital[stat];
  if (typeof value !== "number") return { rank: -1, label: "no data", value, stat, badness: -1 };
  if (!t) return { rank: 0, label: "normal", value, stat, badness: 0 };
  const beyond = (level) => (t.direction === "below" ? value <= level : value >= level);
  const rank = beyond(t.critical) ? 3 : beyond(t.warning) ? 2 : 0;
  const label = rank === 3 ? "critical" : rank === 2 ? "warning" : "normal";
  // how far through its band, 0..1, so that equal ranks still order
  const below = t.direction === "below";
  let progress = 1;
  if (rank === 0) {
    progress = below ? t.warning / Math.max(value, 1e-9) : value / (t.warning || 1e-9);
  } else if (rank === 2) {
    progress = (below ? t.warning - value : value - t.warning) / (Math.abs(t.critical - t.warning) || 1);
  }
  return { rank, label, value, stat, badness: rank * 100 + clamp(progress, 0, 1) * 99 };
}

const AQI_RANKS = [0, 0, 1, 1, 2, 3, 3];

/** An indicator's rank, its own level text, and how bad it is. */
export function indicatorLevel(config, record) {
  const levels = config.indicators?.[record.indicator]?.levels || [];
  const score = typeof record.score === "number" ? record.score : null;
  let rank;
  const at = levels.indexOf(record.level);
  const levelNumber = record.details?.level_number;
  if (at >= 0 && levels.length > 1) {
    rank = Math.round((at * 3) / (levels.length - 1));
  } else if (typeof levelNumber === "number" && levelNumber >= 1) {
    rank = AQI_RANKS[Math.min(levelNumber, 6)];
  } else if (score !== null) {
    rank = score >= 75 ? 0 : score >= 50 ? 1 : score >= 25 ? 2 : 3;
  } else {
    rank = 0;
  }
  const within = score === null ? 0.5 : clamp((100 - score) / 100, 0, 1);
  return { rank, label: record.level || RANKS[rank], value: record.value, badness: rank * 100 + within * 99 };
}

/** Whether an indicator record is a district's health score. */
export function isHealthScore(record) {
  return HEALTH_INDICATORS.includes(record.indicator);
}

function clamp(value, low, high) {
  return Number.isFinite(value) ? Math.min(high, Math.max(low, value)) : low;
}
