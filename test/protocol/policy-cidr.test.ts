import { describe, expect, it } from "vitest";
import { CidrSet, isValidCidr, parseIp } from "../../protocol/policy/cidr";

describe("parseIp", () => {
  it("parses IPv4, IPv6 and IPv4-mapped IPv6 (as IPv4)", () => {
    expect(parseIp("10.1.2.3")).toEqual({ version: 4, value: 0x0a010203 });
    expect(parseIp("::1")).toEqual({ version: 6, words: [0, 0, 0, 1] });
    expect(parseIp("2001:db8::8a2e:370:7334")).toEqual({
      version: 6,
      words: [0x20010db8, 0, 0x8a2e, 0x03707334],
    });
    expect(parseIp("::ffff:1.2.3.4")).toEqual({ version: 4, value: 0x01020304 });
    expect(parseIp("::FFFF:0102:0304")).toEqual({ version: 4, value: 0x01020304 });
    expect(parseIp("[fe80::1%eth0]")).toEqual({ version: 6, words: [0xfe800000, 0, 0, 1] });
    expect(parseIp("::")).toEqual({ version: 6, words: [0, 0, 0, 0] });
  });

  it("parses the full eight-group form (no ::) as the same address as its short form", () => {
    expect(parseIp("0:0:0:0:0:0:0:1")).toEqual(parseIp("::1"));
    expect(parseIp("2001:db8:0:0:1:0:0:1")).toEqual({ version: 6, words: [0x20010db8, 0, 0x10000, 1] });
    expect(CidrSet.parse(["2001:db8::/32"]).contains("2001:0db8:0000:0000:0000:0000:0000:0001")).toBe(true);
    expect(CidrSet.parse(["::1/128"]).contains("0:0:0:0:0:0:0:1")).toBe(true);
  });

  it("rejects malformed addresses", () => {
    for (const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.4.",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      ":1::",
      "12345::",
      "g::1",
      "example.com",
    ]) {
      expect(parseIp(bad), bad).toBeNull();
    }
  });
});

describe("CidrSet", () => {
  const set = CidrSet.parse([
    "10.0.0.0/8",
    "192.168.1.7",
    "172.16.0.0/12",
    "2001:db8::/32",
    "::1",
    "0.0.0.0/32",
  ]);

  it("matches IPv4 ranges and single addresses", () => {
    expect(set.contains("10.255.255.255")).toBe(true);
    expect(set.contains("11.0.0.0")).toBe(false);
    expect(set.contains("192.168.1.7")).toBe(true);
    expect(set.contains("192.168.1.8")).toBe(false);
    expect(set.contains("172.31.0.1")).toBe(true);
    expect(set.contains("172.32.0.1")).toBe(false);
    expect(set.contains("0.0.0.0")).toBe(true);
  });

  it("matches IPv6 ranges", () => {
    expect(set.contains("2001:db8:ffff::1")).toBe(true);
    expect(set.contains("2001:db9::1")).toBe(false);
    expect(set.contains("::1")).toBe(true);
    expect(set.contains("::2")).toBe(false);
  });

  it("matches IPv4-mapped IPv6 clients against IPv4 CIDRs and mapped CIDRs against IPv4 clients", () => {
    expect(set.contains("::ffff:10.1.1.1")).toBe(true);
    expect(set.contains("::ffff:11.1.1.1")).toBe(false);
    const mapped = CidrSet.parse(["::ffff:192.0.2.0/120"]);
    expect(mapped.contains("192.0.2.77")).toBe(true);
    expect(mapped.contains("192.0.3.1")).toBe(false);
    expect(CidrSet.parse(["::/0"]).contains("8.8.8.8")).toBe(true);
  });

  it("handles the edges of the address space and merges overlaps", () => {
    const all = CidrSet.parse(["0.0.0.0/0", "10.0.0.0/8"]);
    expect(all.contains("255.255.255.255")).toBe(true);
    expect(all.size).toBe(1);
    expect(CidrSet.parse(["::/0"]).contains("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")).toBe(true);
    expect(CidrSet.parse(["10.0.0.1/24"]).contains("10.0.0.200")).toBe(true);
  });

  it("never matches garbage and an empty set matches nothing", () => {
    expect(set.contains("not-an-ip")).toBe(false);
    expect(CidrSet.parse([]).contains("10.0.0.1")).toBe(false);
  });

  it("binary search holds over many ranges", () => {
    const entries = Array.from({ length: 1000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/25`);
    const many = CidrSet.parse(entries);
    expect(many.contains("10.0.5.1")).toBe(true);
    expect(many.contains("10.0.5.200")).toBe(false);
    expect(many.contains("10.3.231.127")).toBe(true);
    expect(many.contains("10.3.232.1")).toBe(false);
  });

  it("throws on invalid entries; isValidCidr tells in advance", () => {
    expect(() => CidrSet.parse(["10.0.0.0/33"])).toThrow(/10\.0\.0\.0\/33/);
    for (const bad of [
      "10.0.0.0/33",
      "10.0.0.0/",
      "10.0.0.0/08",
      "::/129",
      "fe80::1%eth0",
      "example.com",
      "1.2.3.4/-1",
    ]) {
      expect(isValidCidr(bad), bad).toBe(false);
    }
    for (const good of ["10.0.0.0/8", "1.2.3.4", "::/0", "2001:db8::/48", "::ffff:1.2.3.4/128"]) {
      expect(isValidCidr(good), good).toBe(true);
    }
  });
});
