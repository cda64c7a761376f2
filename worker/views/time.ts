// One time zone for every time a page shows: chosen by the person (browser zone by default, UTC
// selectable), remembered in the `fg_tz` cookie so the server renders it too. The page script
// and the charts read the same zone from <body data-tz>.

import { createContext, useContext } from "hono/jsx";

export const TZ_COOKIE = "fg_tz";
/** Cookie values: "UTC" (chosen), or "auto:<IANA zone>" (the browser's, set by the page script). */
export type TzCookie = string;

export interface TimeZoneChoice {
  /** The IANA zone used for rendering. */
  zone: string;
  /** "utc" when chosen explicitly, "browser" when it is the browser's own zone (or not yet known). */
  mode: "utc" | "browser";
}

export function validZone(zone: string): boolean {
  if (!zone || zone.length > 64) return false;
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The cookie's choice; before the browser told us its zone, UTC (said so on the page). */
export function zoneFromCookie(value: string | undefined): TimeZoneChoice {
  if (value === "UTC") return { zone: "UTC", mode: "utc" };
  if (value?.startsWith("auto:")) {
    let zone = "";
    try {
      zone = decodeURIComponent(value.slice(5));
    } catch {}
    if (validZone(zone)) return { zone, mode: "browser" };
  }
  return { zone: "UTC", mode: "browser" };
}

export const TimeZoneContext = createContext<string>("UTC");
export const useZone = () => useContext(TimeZoneContext);

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(zone: string, seconds: boolean) {
  const key = `${zone}|${seconds}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      ...(seconds ? { second: "2-digit" } : {}),
      hourCycle: "h23",
      timeZoneName: "short",
    });
    formatters.set(key, f);
  }
  return f;
}

function parts(ms: number, zone: string, seconds = false) {
  const out: Record<string, string> = {};
  for (const p of formatter(zone, seconds).formatToParts(new Date(ms))) out[p.type] = p.value;
  return out;
}

/** "2026-12-02 08:05 GMT+1" in `zone` (the zone's short name; "UTC" for UTC). */
export function formatInstant(ms: number, zone: string, options: { seconds?: boolean } = {}): string {
  const p = parts(ms, zone, options.seconds);
  const time = `${p.hour}:${p.minute}${options.seconds ? `:${p.second}` : ""}`;
  return `${p.year}-${p.month}-${p.day} ${time} ${p.timeZoneName ?? zone}`;
}

/** The zone's short name at `ms` ("UTC", "CET", "GMT+1"). */
export function zoneLabel(ms: number, zone: string): string {
  return parts(ms, zone).timeZoneName ?? zone;
}

/** Offset of `zone` from UTC at `ms`, in ms (positive east of Greenwich). */
function offsetAt(ms: number, zone: string): number {
  const p = parts(ms, zone, true);
  const asUtc = Date.UTC(
    Number(p.year),
    Number(p.month) - 1,
    Number(p.day),
    Number(p.hour),
    Number(p.minute),
    Number(p.second),
  );
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** A datetime-local value ("2026-12-02T08:05") for `ms` in `zone`. */
export function toLocalInput(ms: number, zone: string, seconds = false): string {
  const p = parts(ms, zone, true);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}${seconds ? `:${p.second}` : ""}`;
}

/** A datetime-local value read in `zone` → epoch ms (NaN when it is not one). */
export function fromLocalInput(text: string | undefined, zone: string): number {
  if (!text || !/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?$/.test(text.trim())) return Number.NaN;
  const naive = Date.parse(`${text.trim()}Z`);
  if (!Number.isFinite(naive)) return Number.NaN;
  // Two rounds settle the offset across a DST change.
  let ms = naive - offsetAt(naive, zone);
  ms = naive - offsetAt(ms, zone);
  return ms;
}
