import { describe, expect, it } from "vitest";
import { chunkId, newEpoch } from "../../agent/spool/chunk-name";
import { formatChunkId, parseChunkId } from "../../protocol/chunk-id";

describe("the chunk id contract (X-Fleetgate-Chunk)", () => {
  it("parses what the agent builds, for epochs the spool makes", () => {
    for (let i = 0; i < 200; i++) {
      const epoch = newEpoch(Date.now() + i * 86_400_000, Math.random);
      const seq = 1 + Math.floor(Math.random() * 1e9);
      expect(parseChunkId(chunkId({ epoch, seq }))).toEqual({ epoch, seq });
    }
    expect(formatChunkId({ epoch: "lz3k9a", seq: 42 })).toBe("lz3k9a.42");
  });

  it("refuses anything that is not <epoch>.<seq>", () => {
    for (const bad of [
      undefined,
      null,
      "",
      "abc",
      ".1",
      "abc.",
      "abc.-1",
      "abc.1.2",
      "a b.1",
      "abc.1x",
      `${"a".repeat(41)}.1`,
      `abc.${"9".repeat(16)}`,
      "é.1",
    ]) {
      expect(parseChunkId(bad)).toBeNull();
    }
    expect(parseChunkId(`${"a".repeat(40)}.${"9".repeat(15)}`)).toEqual({
      epoch: "a".repeat(40),
      seq: 999_999_999_999_999,
    });
  });
});
