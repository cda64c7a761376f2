import { describe, expect, it } from "vitest";
import { inSchedule, isValidTimeZone, localTime } from "../../protocol/policy/schedule";
import { blockIf, facts } from "./policy-helpers";

const at = (iso: string) => Date.parse(iso);

describe("schedules", () => {
  it("follows Europe/Berlin wall-clock time across the spring DST change", () => {
    const day = { tz: "Europe/Berlin", days: ["sat", "sun", "mon"] as const, from: "09:00", to: "17:00" };
    const schedule = { ...day, days: [...day.days] };
    // Saturday 28 March 2026 is CET (UTC+1); Monday 30 March is CEST (UTC+2).
    expect(inSchedule(schedule, at("2026-03-28T07:30:00Z"))).toBe(false); // 08:30 local
    expect(inSchedule(schedule, at("2026-03-28T08:00:00Z"))).toBe(true); // 09:00 local
    expect(inSchedule(schedule, at("2026-03-30T07:30:00Z"))).toBe(true); // 09:30 local
    expect(inSchedule(schedule, at("2026-03-30T06:59:00Z"))).toBe(false); // 08:59 local
    expect(inSchedule(schedule, at("2026-03-30T14:59:00Z"))).toBe(true); // 16:59 local
    expect(inSchedule(schedule, at("2026-03-30T15:00:00Z"))).toBe(false); // 17:00 local
  });

  it("follows the autumn change too (25 October 2026)", () => {
    const schedule = { tz: "Europe/Berlin", days: ["sun" as const], from: "02:30", to: "03:00" };
    // 02:30 local happens twice: 00:30Z (CEST) and 01:30Z (CET).
    expect(inSchedule(schedule, at("2026-10-25T00:30:00Z"))).toBe(true);
    expect(inSchedule(schedule, at("2026-10-25T01:30:00Z"))).toBe(true);
    expect(inSchedule(schedule, at("2026-10-25T02:00:00Z"))).toBe(false); // 03:00 CET
  });

  it("overnight windows belong to the day they start on", () => {
    const schedule = { tz: "UTC", days: ["fri" as const], from: "22:00", to: "06:00" };
    expect(inSchedule(schedule, at("2026-03-06T21:59:00Z"))).toBe(false); // Fri
    expect(inSchedule(schedule, at("2026-03-06T22:00:00Z"))).toBe(true);
    expect(inSchedule(schedule, at("2026-03-07T05:59:00Z"))).toBe(true); // Sat morning
    expect(inSchedule(schedule, at("2026-03-07T06:00:00Z"))).toBe(false);
    expect(inSchedule(schedule, at("2026-03-07T23:00:00Z"))).toBe(false); // Sat night
    expect(inSchedule(schedule, at("2026-03-06T03:00:00Z"))).toBe(false); // Fri morning (Thu not listed)
  });

  it("an overnight window across the spring change ends at 06:00 local", () => {
    const schedule = { tz: "Europe/Berlin", days: ["sat" as const], from: "22:00", to: "06:00" };
    expect(inSchedule(schedule, at("2026-03-28T21:00:00Z"))).toBe(true); // 22:00 CET
    expect(inSchedule(schedule, at("2026-03-29T03:30:00Z"))).toBe(true); // 05:30 CEST
    expect(inSchedule(schedule, at("2026-03-29T04:00:00Z"))).toBe(false); // 06:00 CEST
  });

  it("from == to is the whole day; 24:00 ends at midnight", () => {
    expect(
      inSchedule({ tz: "UTC", days: ["wed"], from: "00:00", to: "00:00" }, at("2026-03-04T23:59:00Z")),
    ).toBe(true);
    expect(
      inSchedule({ tz: "UTC", days: ["wed"], from: "00:00", to: "00:00" }, at("2026-03-05T00:00:00Z")),
    ).toBe(false);
    expect(
      inSchedule({ tz: "UTC", days: ["wed"], from: "18:00", to: "24:00" }, at("2026-03-04T23:59:00Z")),
    ).toBe(true);
  });

  it("uses local day and hour in far-off zones", () => {
    expect(localTime("Pacific/Kiritimati", at("2026-03-04T12:00:00Z"))).toMatchObject({
      day: 3,
      minutes: 2 * 60,
    });
    expect(localTime("America/St_Johns", at("2026-03-04T12:00:00Z"))).toMatchObject({
      day: 2,
      minutes: 8 * 60 + 30,
    });
    expect(isValidTimeZone("Europe/Berlin")).toBe(true);
    expect(isValidTimeZone("Europe/Atlantis")).toBe(false);
  });

  it("drives rule matching through facts.now", () => {
    const policy = blockIf(
      { schedule: "night" },
      { schedules: { night: { tz: "Europe/Berlin", days: ["sat"], from: "22:00", to: "06:00" } } },
    );
    expect(policy.evaluate(facts({ now: at("2026-03-29T03:30:00Z") })).action).toBe("block");
    expect(policy.evaluate(facts({ now: at("2026-03-29T04:30:00Z") })).action).toBe("allow");
  });
});
