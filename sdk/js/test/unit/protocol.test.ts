import { describe, expect, it } from "vitest";

import { CloseCode, decodeServerFrame, retryAfterClose } from "../../src/protocol.js";
import { connectUrl } from "../../src/socket.js";
import { isExpired } from "../../src/token.js";

describe("server frames", () => {
  it("are read with the wire's member names", () => {
    const text =
      '{"type":"push","push_id":"p-17","seq":42,"sender":"admin","message":{"kind":"promo"},' +
      '"notification":{"title":"Sale"},"sent_at":"2025-05-01T10:00:00.120Z"}';
    expect(decodeServerFrame(text)).toMatchObject({ type: "push", push_id: "p-17", seq: 42 });
  });

  it("that this SDK cannot use are skipped, not fatal", () => {
    expect(decodeServerFrame("not json")).toBeNull();
    expect(decodeServerFrame("[1]")).toBeNull();
    expect(decodeServerFrame('{"type":"added_later"}')).toBeNull();
    expect(decodeServerFrame('{"type":"push","push_id":"p","seq":0}')).toBeNull();
    expect(decodeServerFrame('{"type":"error","code":"new_code","message":""}')).toMatchObject({
      code: "new_code",
    });
  });
});

describe("close codes", () => {
  it("say whether and how to come back", () => {
    expect(retryAfterClose(CloseCode.Normal)).toBe("stop");
    expect(retryAfterClose(CloseCode.Replaced)).toBe("stop");
    expect(retryAfterClose(CloseCode.ProtocolViolation)).toBe("stop");
    expect(retryAfterClose(CloseCode.UnsupportedVersion)).toBe("stop");
    expect(retryAfterClose(CloseCode.Unauthorized)).toBe("new_token");
    expect(retryAfterClose(CloseCode.Refused)).toBe("reconnect_later");
    for (const code of [1001, 1006, 1011, 4003, 4004, 4008, 4009, 4011, undefined]) {
      expect(retryAfterClose(code)).toBe("reconnect");
    }
  });
});

describe("urls", () => {
  it("of a server's base become its connect endpoint", () => {
    expect(connectUrl("http://h:8080")).toBe("ws://h:8080/v1/connect");
    expect(connectUrl("https://push.example.com/")).toBe("wss://push.example.com/v1/connect");
    expect(connectUrl("wss://h/custom/path")).toBe("wss://h/custom/path");
  });
});

describe("token expiry", () => {
  it("is read from the token's own claim", () => {
    // The known answer of docs/protocol.md: key k, account a, expiry 1.
    const token = "eyJrIjoiayIsImEiOiJhIiwiZSI6MX0.sig";
    expect(isExpired(token, 999)).toBe(false);
    expect(isExpired(token, 1_000)).toBe(true);
    expect(isExpired("opaque-token", Date.now())).toBe(false);
  });
});
