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
    ["TE chunked, chunked", head(["POST http://a/ HTTP/1.1", "Transfer-Encoding: chunked, chunked"])],
    ["TE identity, chunked", head(["POST http://a/ HTTP/1.1", "Transfer-Encoding: identity, chunked"])],
    [
      "TE on two lines",
      head(["POST http://a/ HTTP/1.1", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]),
    ],
    [
      "TE empty, then chunked",
      head(["POST http://a/ HTTP/1.1", "Transfer-Encoding:", "Transfer-Encoding: chunked"]),
    ],
    ["TE in HTTP/1.0", head(["POST http://a/ HTTP/1.0", "Transfer-Encoding: chunked"])],
    ["NUL in a value", head(["GET http://a/ HTTP/1.1", "X-Nul: a\0b"])],
    ["SOH in a value", head(["GET http://a/ HTTP/1.1", "X: a\x01b"])],
    ["DEL in a value", head(["GET http://a/ HTTP/1.1", "X: a\x7fb"])],
    ["ESC in a value", head(["GET http://a/ HTTP/1.1", "X: \x1b[31m"])],
    ["NUL in the target", "GET http://a/\0 HTTP/1.1"],
    ["UTF-8 in the target", "GET http://a/\xc3\xa4 HTTP/1.1"],
    ["DEL in the target", "GET http://a/\x7f HTTP/1.1"],
    ["HTAB in the target", "GET http://a/\tx HTTP/1.1"],
    ["a space in the target", "GET http://a/ x HTTP/1.1"],
    ["bare LF after the request line", "GET http://a/ HTTP/1.1\nHost: a"],
    ["bad Max-Forwards on OPTIONS", head(["OPTIONS http://a/ HTTP/1.1", "Max-Forwards: -1"])],
    ["two Max-Forwards on TRACE", head(["TRACE http://a/ HTTP/1.1", "Max-Forwards: 1", "Max-Forwards: 2"])],
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

  it("keeps HTAB and obs-text in values", () => {
    const h = parseRequestHead(head(["GET http://a/ HTTP/1.1", "X: a\tb", "Y: \xe4\xf6"]));
    expect(endToEndFields(h, true)).toBe("X: a\tb\r\nY: \xe4\xf6\r\n");
  });

  it("takes Max-Forwards on OPTIONS and TRACE only, and leaves it out for the writer to decrement", () => {
    const options = parseRequestHead(head(["OPTIONS http://a/ HTTP/1.1", "Max-Forwards: 3", "X: 1"]));
    expect(options.maxForwards).toBe(3);
    expect(endToEndFields(options, true)).toBe("X: 1\r\n");
    const get = parseRequestHead(head(["GET http://a/ HTTP/1.1", "Max-Forwards: nonsense", "X: 1"]));
    expect(get.maxForwards).toBe(-1);
    expect(endToEndFields(get, true)).toBe("Max-Forwards: nonsense\r\nX: 1\r\n");
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
    const h = parseResponseHead(head(["HTTP/1.1 404 Not Found", "Transfer-Encoding: Chunked", "X: y"]));
    expect(h).toMatchObject({ status: 404, target: "Not Found", chunked: true });
    expect(endToEndFields(h, false)).toBe("X: y\r\n");
  });

  it("drops Content-Length beside Transfer-Encoding and rejects garbage with 502", () => {
    const h = parseResponseHead(
      head(["HTTP/1.1 200 OK", "Content-Length: 5", "X: y", "Transfer-Encoding: chunked", "Z: 1"]),
    );
    expect(h).toMatchObject({ contentLength: -1, lengthDropped: true, chunked: true });
    expect(endToEndFields(h, false)).toBe("X: y\r\nZ: 1\r\n");
    expect(() => parseResponseHead("HTTP/1.1 2x0 OK")).toThrow(HeadError);
    expect(() => parseResponseHead("SSH-2.0-OpenSSH")).toThrow(HeadError);
  });

  it.each([
    ["NUL in a value", "HTTP/1.1 200 OK\r\nX: a\0b"],
    ["ESC in a value", "HTTP/1.1 200 OK\r\nX: a\x1bb"],
    ["a control byte in the reason", "HTTP/1.1 200 O\x01K"],
    ["bare LF after the status line", "HTTP/1.1 200 OK\nX: y"],
    ["gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked"],
    ["chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"],
    ["Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked"],
  ])("rejects a response with %s with 502", (_name, text) => {
    expect(() => parseResponseHead(text)).toThrow(expect.objectContaining({ status: 502 }));
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

  it.each([
    ["5;a=b\r\nhello\r\n0\r\n\r\n", "an extension"],
    ["5 ;a\r\nhello\r\n0\r\n\r\n", "BWS before an extension"],
    ['5;a="x; y"\r\nhello\r\n0\r\n\r\n', "a quoted extension"],
    ["000\r\n\r\n", "a zero size with leading zeros"],
    ["0\r\nX-A: 1\r\nX-B:\t2 \xff\r\n\r\n", "trailer fields"],
  ])("accepts %j (%s)", (text) => {
    expect(new ChunkedTracker().push(Buffer.from(text, "latin1"))).toBe(text.length);
  });

  it.each([
    ["5 \r\nhello\r\n0\r\n\r\n", "space after the size"],
    ["2 junk\r\naa\r\n0\r\n\r\n", "junk after the size"],
    ["5\nhello\r\n0\r\n\r\n", "bare LF after the size"],
    ["5;a\nhello\r\n0\r\n\r\n", "bare LF in an extension"],
    ["5;a\0\r\nhello\r\n0\r\n\r\n", "NUL in an extension"],
    ["0\r\nX-A: 1\n\r\n", "bare LF in a trailer"],
    ["0\r\nX-A: 1\r\n\n", "bare LF ending the trailers"],
    ["0\r\nX-A: a\0b\r\n\r\n", "NUL in a trailer"],
    ["0\r\nnot a header\r\n\r\n", "a trailer that is not a field line"],
    ["0\r\n folded\r\n\r\n", "an obs-fold trailer"],
    ["0\r\nX-A : 1\r\n\r\n", "space before a trailer colon"],
    ["0\r\n: 1\r\n\r\n", "a trailer without a name"],
  ])("rejects %j (%s)", (text) => {
    expect(() => new ChunkedTracker().push(Buffer.from(text, "latin1"))).toThrow();
  });
});

describe("targets", () => {
  it("parses absolute-form URLs", () => {
    expect(parseAbsoluteTarget("http://Example.COM:8080/a/b?q=1#frag")).toEqual({
      host: "example.com",
      port: 8080,
      path: "/a/b?q=1",
      authority: "Example.COM:8080",
      pathless: false,
    });
    expect(parseAbsoluteTarget("http://example.com")).toMatchObject({ port: 80, path: "/", pathless: true });
    expect(parseAbsoluteTarget("http://example.com#x")).toMatchObject({ path: "/", pathless: true });
    expect(parseAbsoluteTarget("http://example.com?x")).toMatchObject({ path: "/?x", pathless: false });
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
