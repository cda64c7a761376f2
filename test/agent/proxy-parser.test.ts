// The built-in proxy's HTTP/1.1 pieces that need no sockets: heads, chunked framing, targets.

import { describe, expect, it } from "vitest";
import { ChunkedTracker } from "../../agent/proxy/builtin/chunked";
import {
  endToEndFields,
  HeadError,
  parseRequestHead,
  parseResponseHead,
  wantsKeepAlive,
} from "../../agent/proxy/builtin/http-head";
import { escapeHtml } from "../../agent/proxy/builtin/pages";
import { parseAbsoluteTarget, parseAuthority } from "../../agent/proxy/builtin/target";

function head(lines: string[]): string {
  return lines.join("\r\n");
}

describe("request heads", () => {
  it("reads the request line, framing and proxy credentials", () => {
    const h = parseRequestHead(
      head([
        "POST http://example.com/x HTTP/1.1",
        "Host: example.com",
        "Content-Length:  12 ",
        "Proxy-Authorization: Basic YTpi",
        "Connection: Keep-Alive",
      ]),
    );
    expect(h).toMatchObject({
      method: "POST",
      target: "http://example.com/x",
      minor: 1,
      contentLength: 12,
      chunked: false,
      proxyAuthorization: "Basic YTpi",
      connection: "keep-alive",
    });
    expect(wantsKeepAlive(h)).toBe(true);
  });

  it("treats HTTP/1.0 as close unless keep-alive is asked for", () => {
    expect(wantsKeepAlive(parseRequestHead("GET http://a/ HTTP/1.0"))).toBe(false);
    expect(wantsKeepAlive(parseRequestHead("GET http://a/ HTTP/1.0\r\nConnection: keep-alive"))).toBe(true);
    expect(wantsKeepAlive(parseRequestHead("GET http://a/ HTTP/1.1\r\nConnection: close"))).toBe(false);
  });

  it.each([
    ["obs-fold", head(["GET http://a/ HTTP/1.1", "X-A: 1", " folded"])],
    ["space before colon", head(["GET http://a/ HTTP/1.1", "X-A : 1"])],
    ["bare LF", "GET http://a/ HTTP/1.1\r\nX-A: 1\nX-B: 2"],
    ["bare CR", "GET http://a/ HTTP/1.1\r\nX-A: 1\rX-B: 2"],
    ["CL and TE", head(["POST http://a/ HTTP/1.1", "Content-Length: 1", "Transfer-Encoding: chunked"])],
    ["two lengths", head(["POST http://a/ HTTP/1.1", "Content-Length: 1", "Content-Length: 2"])],
    ["bad length", head(["POST http://a/ HTTP/1.1", "Content-Length: -1"])],
    ["TE not chunked", head(["POST http://a/ HTTP/1.1", "Transfer-Encoding: gzip"])],
    ["HTTP/2 line", "GET http://a/ HTTP/2.0"],
    ["no target", "GET  HTTP/1.1"],
  ])("rejects %s with 400", (_name, text) => {
    try {
      parseRequestHead(text);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(HeadError);
      expect((error as HeadError).status).toBe(400);
    }
  });

  it("drops hop-by-hop fields, those named in Connection, and Host for requests", () => {
    const h = parseRequestHead(
      head([
        "GET http://a/ HTTP/1.1",
        "Host: a",
        "Connection: keep-alive, X-Secret",
        "X-Secret: 1",
        "Keep-Alive: 5",
        "Proxy-Connection: keep-alive",
        "TE: trailers",
        "Trailer: X",
        "Upgrade: h2c",
        "Proxy-Authorization: Basic x",
        "Accept: */*",
        "X-Last: kept",
      ]),
    );
    expect(endToEndFields(h, true)).toBe("Accept: */*\r\nX-Last: kept\r\n");
    expect(endToEndFields(h, false)).toBe("Host: a\r\nAccept: */*\r\nX-Last: kept\r\n");
  });
});

describe("response heads", () => {
  it("reads status, reason and framing", () => {
    const h = parseResponseHead(head(["HTTP/1.1 404 Not Found", "Transfer-Encoding: gzip, chunked", "X: y"]));
    expect(h).toMatchObject({
      status: 404,
      target: "Not Found",
      chunked: true,
      transferEncoding: "gzip, chunked",
    });
    expect(endToEndFields(h, false)).toBe("X: y\r\n");
  });

  it("ignores Content-Length beside Transfer-Encoding and rejects garbage with 502", () => {
    const h = parseResponseHead(head(["HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked"]));
    expect(h.contentLength).toBe(-1);
    expect(() => parseResponseHead("HTTP/1.1 2x0 OK")).toThrow(HeadError);
    expect(() => parseResponseHead("SSH-2.0-OpenSSH")).toThrow(HeadError);
  });
});

describe("chunked framing", () => {
  it("finds the end of a message split at every byte", () => {
    const message = Buffer.from(
      "5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT",
    );
    for (let split = 1; split < message.length - 4; split++) {
      const t = new ChunkedTracker();
      expect(t.push(message.subarray(0, split))).toBe(-1);
      expect(t.push(message.subarray(split))).toBe(message.length - 4 - split);
    }
  });

  it("honours a start offset and rejects bad framing", () => {
    const t = new ChunkedTracker();
    const buf = Buffer.from("HEAD0\r\n\r\n");
    expect(t.push(buf, 4)).toBe(buf.length);
    expect(() => new ChunkedTracker().push(Buffer.from("zz\r\n"))).toThrow();
    expect(() => new ChunkedTracker().push(Buffer.from("3\r\nabcX"))).toThrow();
  });
});

describe("targets", () => {
  it("parses absolute-form URLs", () => {
    expect(parseAbsoluteTarget("http://Example.COM:8080/a/b?q=1#frag")).toEqual({
      host: "example.com",
      port: 8080,
      path: "/a/b?q=1",
      authority: "Example.COM:8080",
    });
    expect(parseAbsoluteTarget("http://example.com")).toMatchObject({ port: 80, path: "/" });
    expect(parseAbsoluteTarget("http://example.com?x")).toMatchObject({ path: "/?x" });
    expect(parseAbsoluteTarget("http://[::1]:81/")).toMatchObject({ host: "::1", port: 81 });
    expect(parseAbsoluteTarget("http://user:pw@example.com/")).toMatchObject({ host: "example.com" });
    expect(parseAbsoluteTarget("/relative")).toBeNull();
    expect(parseAbsoluteTarget("https://example.com/")).toBeNull();
    expect(parseAbsoluteTarget("http://example.com:99999/")).toBeNull();
  });

  it("parses CONNECT authorities", () => {
    expect(parseAuthority("example.com:443", 0)).toEqual({ host: "example.com", port: 443 });
    expect(parseAuthority("[2001:db8::1]:443", 0)).toEqual({ host: "2001:db8::1", port: 443 });
    expect(parseAuthority("example.com", 0)).toBeNull();
    expect(parseAuthority("exa mple.com:443", 0)).toBeNull();
  });
});

describe("pages", () => {
  it("escapes HTML", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });
});
