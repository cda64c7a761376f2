// How a rollup row's `kind` packs dimension and grain. Per-node rows: totals per minute and hour,
// dimensions per hour. Fleet rows (node "*"): everything also per day, so a 30-day fleet report
// reads ~30 buckets instead of ~720 × nodes.

export const DIMENSIONS = ["total", "host", "client", "user", "rule"] as const;
export type Dimension = (typeof DIMENSIONS)[number];
export const GRAINS = ["m", "h", "d"] as const;
export type Grain = (typeof GRAINS)[number];

export const FLEET = "*";

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
export const GRAIN_MS: Record<Grain, number> = { m: MINUTE, h: HOUR, d: DAY };

export function kindOf(dimension: Dimension, grain: Grain): number {
  return DIMENSIONS.indexOf(dimension) * GRAINS.length + GRAINS.indexOf(grain);
}

export const KIND = {
  totalMinute: kindOf("total", "m"),
  totalHour: kindOf("total", "h"),
  totalDay: kindOf("total", "d"),
  hostHour: kindOf("host", "h"),
  hostDay: kindOf("host", "d"),
  clientHour: kindOf("client", "h"),
  clientDay: kindOf("client", "d"),
  userHour: kindOf("user", "h"),
  userDay: kindOf("user", "d"),
  ruleHour: kindOf("rule", "h"),
  ruleDay: kindOf("rule", "d"),
} as const;
