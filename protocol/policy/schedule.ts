// Schedules are judged in wall-clock time of their IANA zone via Intl, so DST shifts need no
// special casing: 09:00 in Europe/Berlin is 09:00 local on both sides of a change.
// A window runs from `from` (inclusive) to `to` (exclusive) on each listed day; from > to runs
// overnight into the next day (the day it starts on is the one listed); from == to is the whole day.

export type Day = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";

export interface ScheduleSpec {
  tz: string;
  days: readonly Day[];
  from: string;
  to: string;
}

export interface CompiledSchedule {
  tz: string;
  /** Bit d set for day d, Monday = 0. */
  days: number;
  from: number;
  to: number;
}

export const DAYS: readonly Day[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEKDAY_INDEX: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

const formatters = new Map<string, Intl.DateTimeFormat>();
// Offsets are whole minutes in every current zone, so one answer per zone per minute suffices.
const lastMinute = new Map<string, { minute: number; day: number; minutes: number }>();

function formatterFor(tz: string): Intl.DateTimeFormat {
  let formatter = formatters.get(tz);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
    });
    formatters.set(tz, formatter);
  }
  return formatter;
}

export function isValidTimeZone(tz: string): boolean {
  try {
    formatterFor(tz);
    return true;
  } catch {
    return false;
  }
}

/** Day (Monday = 0) and minutes since local midnight at `nowMs` in `tz`. */
export function localTime(tz: string, nowMs: number): { day: number; minutes: number } {
  const minute = Math.floor(nowMs / 60_000);
  const cached = lastMinute.get(tz);
  if (cached && cached.minute === minute) return cached;
  let day = 0;
  let hour = 0;
  let minutes = 0;
  for (const part of formatterFor(tz).formatToParts(nowMs)) {
    if (part.type === "weekday") day = WEEKDAY_INDEX[part.value] ?? 0;
    else if (part.type === "hour") hour = Number(part.value) % 24;
    else if (part.type === "minute") minutes = Number(part.value);
  }
  const entry = { minute, day, minutes: hour * 60 + minutes };
  lastMinute.set(tz, entry);
  return entry;
}

/** "HH:MM" to minutes; "24:00" is accepted as the end of a day. */
export function parseClock(text: string): number | null {
  const match = /^([01][0-9]|2[0-4]):([0-5][0-9])$/.exec(text);
  if (!match) return null;
  const minutes = Number(match[1]) * 60 + Number(match[2]);
  return minutes > 1440 ? null : minutes;
}

export function compileSchedule(spec: ScheduleSpec): CompiledSchedule {
  let days = 0;
  for (const day of spec.days) days |= 1 << DAYS.indexOf(day);
  return { tz: spec.tz, days, from: parseClock(spec.from) ?? 0, to: parseClock(spec.to) ?? 0 };
}

export function matchesSchedule(schedule: CompiledSchedule, nowMs: number): boolean {
  const { day, minutes } = localTime(schedule.tz, nowMs);
  const today = (schedule.days >> day) & 1;
  if (schedule.from === schedule.to) return today === 1;
  if (schedule.from < schedule.to) return today === 1 && minutes >= schedule.from && minutes < schedule.to;
  const yesterday = (schedule.days >> ((day + 6) % 7)) & 1;
  return (today === 1 && minutes >= schedule.from) || (yesterday === 1 && minutes < schedule.to);
}

export function inSchedule(schedule: ScheduleSpec, nowMs: number): boolean {
  return matchesSchedule(compileSchedule(schedule), nowMs);
}
