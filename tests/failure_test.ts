/**
 * Runtime failures, summarised (src/failure.ts): the same connection failure reads alike on
 * Deno, Bun and Node (the error's name, an errno code, host and port), never quotes the URL's
 * query string, and is never cut mid-word; and a runtime's permission refusal is told apart
 * from "nothing answered", naming the flag that grants it.
 *
 * The error objects below are built in the shapes each runtime really produced (Deno 2.9,
 * Bun 1.4, Node 24 and 22 on Linux, against a closed loopback port, a server that resets, and
 * one that closes without answering); DNS failures in the shapes Deno's and Node's trackers
 * quote. Each shape is tested on every runtime.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { networkReason, refusedFlag, summarize } from "../src/failure.ts";
import { renderings } from "./helpers/leaks.ts";
import { closedPort } from "./helpers/sockets.ts";

const QUERY = "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";
const URL_Q = `http://127.0.0.1:40342/metadata/identity/oauth2/token?${QUERY}`;

/** `fetch failed` with `cause`: how Deno 2.9 and Node wrap the reason. */
const fetchFailed = (cause: unknown) => new TypeError("fetch failed", { cause });

/** An error with extra own properties, as runtimes make them. */
function shaped(message: string, fields: Record<string, unknown>, base: Error = new Error(message)): Error {
  return Object.assign(base, fields);
}

/** A Node socket error: `connect ECONNREFUSED 127.0.0.1:40342`. */
const nodeSocket = (code: string, errno: number, syscall: string, address = "127.0.0.1", port = 40342) =>
  shaped(`${syscall} ${code} ${address}:${port}`, { errno, code, syscall, address, port });

/** Bun's fetch error: a TypeError with `code`, the whole URL as `path`, and errno 0. */
const bunFetch = (code: string, message: string, url = URL_Q) =>
  shaped(`${code}: ${message}`, { code, path: url, errno: 0 }, new TypeError(`${code}: ${message}`));

const SHAPES = {
  refused: {
    deno: fetchFailed(
      new Error(
        `error sending request for url (${URL_Q}): client error (Connect): tcp connect error: Connection refused (os error 111)`,
      ),
    ),
    bun: bunFetch("ECONNREFUSED", "Unable to connect. Is the computer able to access the url?"),
    node: fetchFailed(nodeSocket("ECONNREFUSED", -111, "connect")),
  },
  reset: {
    deno: fetchFailed(new Error("Connection reset by peer (os error 104)")),
    bun: bunFetch(
      "ECONNRESET",
      "The socket connection was closed unexpectedly. For more information, pass `verbose: true` in the second argument to fetch()",
    ),
    node: fetchFailed(shaped("read ECONNRESET", { errno: -104, code: "ECONNRESET", syscall: "read" })),
  },
  // The server accepted the request and closed the connection without a word.
  closed: {
    deno: fetchFailed(
      new Error(
        `error sending request from 127.0.0.1:43144 for ${URL_Q} (127.0.0.1:40342): client error (SendRequest): connection closed before message completed`,
      ),
    ),
    bun: bunFetch(
      "ECONNRESET",
      "The socket connection was closed unexpectedly. For more information, pass `verbose: true` in the second argument to fetch()",
    ),
    node: fetchFailed(shaped("other side closed", { name: "SocketError", code: "UND_ERR_SOCKET" })),
  },
} as const;

const CODES = { refused: "ECONNREFUSED", reset: "ECONNRESET", closed: "ECONNRESET" } as const;

/** The parts of a summary that are shown. */
function shown(summary: Error) {
  return { name: summary.name, message: summary.message, code: (summary as { code?: string }).code };
}

/** Asserts that no rendering of `summary` quotes the query string or the raw error. */
function assertNoQuery(summary: Error): void {
  for (const text of renderings(summary)) {
    assert.ok(!text.includes("api-version"), `the query string is shown: ${text}`);
    assert.ok(!text.includes("?"), `a query string is shown: ${text}`);
    assert.ok(!text.includes("os error"), `the runtime's message is quoted: ${text}`);
  }
}

describe("summarize(): connection failures read alike on every runtime", () => {
  for (const [kind, runtimes] of Object.entries(SHAPES)) {
    const code = CODES[kind as keyof typeof CODES];
    for (const [runtime, error] of Object.entries(runtimes)) {
      test(`summarize() of ${runtime}'s ${kind} connection is TypeError ${code} 127.0.0.1:40342, no query`, () => {
        const summary = summarize(error, [], URL_Q);
        assert.deepEqual(shown(summary), { name: "TypeError", message: `${code} 127.0.0.1:40342`, code });
        assert.equal(summary.cause, undefined, "the raw error is never kept");
        assert.equal(String(summary), `TypeError: ${code} 127.0.0.1:40342`);
        assertNoQuery(summary);
      });
    }
    test(`summarize() of a ${kind} connection is the same on Deno, Bun and Node`, () => {
      const [deno, ...others] = Object.values(runtimes).map((error) => shown(summarize(error, [], URL_Q)));
      for (const other of others) assert.deepEqual(other, deno);
    });
  }

  test("summarize() of node:net's own error (every runtime's node:net) keeps its name and code, with the URL's host and port", () => {
    const summary = summarize(nodeSocket("ECONNREFUSED", -111, "connect", "::1", 40342), [], "http://[::1]:40342/x");
    assert.deepEqual(shown(summary), { name: "Error", message: "ECONNREFUSED [::1]:40342", code: "ECONNREFUSED" });
  });

  test("summarize() names the default port when the URL omits it", () => {
    const error = fetchFailed(nodeSocket("ECONNREFUSED", -111, "connect", "127.0.0.1", 80));
    assert.equal(
      summarize(error, [], "http://127.0.0.1/metadata/identity/oauth2/token?x=1").message,
      "ECONNREFUSED 127.0.0.1:80",
    );
    const bun = bunFetch("ECONNREFUSED", "Unable to connect.", "https://login.example.test/t/oauth2/v2.0/token");
    assert.equal(
      summarize(bun, [], "https://login.example.test/t/oauth2/v2.0/token").message,
      "ECONNREFUSED login.example.test:443",
    );
  });

  test("summarize() maps Deno's DNS, timeout and route failures to Node's errno codes", () => {
    const url = "https://login.example.test/tenant/oauth2/v2.0/token?x=1";
    const deno = (reason: string) =>
      fetchFailed(new Error(`error sending request for url (${url}): client error (Connect): ${reason}`));
    const cases: [string, string][] = [
      [
        "dns error: failed to lookup address information: Name or service not known: failed to lookup address information: Name or service not known",
        "ENOTFOUND",
      ],
      ["dns error: failed to lookup address information: nodename nor servname provided, or not known", "ENOTFOUND"],
      ["dns error: failed to lookup address information: Temporary failure in name resolution", "EAI_AGAIN"],
      ["tcp connect error: Connection timed out (os error 110)", "ETIMEDOUT"],
      ["tcp connect error: No route to host (os error 113)", "EHOSTUNREACH"],
      ["tcp connect error: Network is unreachable (os error 101)", "ENETUNREACH"],
      [
        "tcp connect error: No connection could be made because the target machine actively refused it. (os error 10061)",
        "ECONNREFUSED",
      ],
      [
        "connection error: An existing connection was forcibly closed by the remote host. (os error 10054)",
        "ECONNRESET",
      ],
    ];
    for (const [reason, code] of cases) {
      const summary = summarize(deno(reason), [], url);
      assert.deepEqual(shown(summary), { name: "TypeError", message: `${code} login.example.test:443`, code }, reason);
      assert.equal(networkReason(deno(reason)), code, reason);
    }
  });

  test("summarize() of Node's DNS failure is ENOTFOUND with the host", () => {
    const error = fetchFailed(
      shaped("getaddrinfo ENOTFOUND login.example.test", {
        errno: -3008,
        code: "ENOTFOUND",
        syscall: "getaddrinfo",
        hostname: "login.example.test",
      }),
    );
    const summary = summarize(error, [], "https://login.example.test/t/oauth2/v2.0/token");
    assert.deepEqual(shown(summary), {
      name: "TypeError",
      message: "ENOTFOUND login.example.test:443",
      code: "ENOTFOUND",
    });
  });

  test("summarize() reads Bun's older error names (ConnectionRefused, ConnectionClosed) as errno codes", () => {
    const older = (code: string) =>
      shaped("Unable to connect. Is the computer able to access the url?", { code, path: URL_Q });
    assert.equal(summarize(older("ConnectionRefused"), [], URL_Q).message, "ECONNREFUSED 127.0.0.1:40342");
    assert.equal(summarize(older("ConnectionClosed"), [], URL_Q).message, "ECONNRESET 127.0.0.1:40342");
  });

  test("summarize() of a reason it cannot map quotes it without the URL's query string", () => {
    const error = fetchFailed(
      new Error(`error sending request for url (${URL_Q}): client error (Connect): invalid dns name`),
    );
    const summary = summarize(error, [], URL_Q);
    assert.equal(summary.name, "TypeError");
    assert.equal((summary as { code?: string }).code, undefined);
    assert.match(summary.message, /invalid dns name/);
    assert.match(summary.message, /127\.0\.0\.1:40342/);
    for (const text of renderings(summary)) {
      assert.ok(!text.includes("api-version") && !text.includes("resource="), `the query string is shown: ${text}`);
    }
  });

  test("summarize() shortens a long reason at a word, never inside one", () => {
    const words = Array.from({ length: 80 }, (_, i) => `word${i}x`);
    const summary = summarize(new Error(words.join(" ")), [], URL_Q);
    assert.ok(summary.message.length <= 260, `too long: ${summary.message.length}`);
    const kept = summary.message.replace(/\s*\(127\.0\.0\.1:40342\)$/, "").replace(/\.\.\.$/, "").trim().split(" ");
    assert.ok(kept.length > 5 && kept.length < 80, `kept ${kept.length} words`);
    for (const word of kept) assert.ok(words.includes(word), `"${word}" is not a whole word of the reason`);
  });

  test("summarize() without a URL still gives the name and code", () => {
    assert.deepEqual(shown(summarize(SHAPES.refused.deno, [])), {
      name: "TypeError",
      message: "ECONNREFUSED",
      code: "ECONNREFUSED",
    });
  });
});

/** A server on 127.0.0.1 that reads a request and closes the connection without a word. */
async function closingServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.once("data", () => socket.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("summarize() of this runtime's own fetch failures, on real loopback sockets", () => {
  const failure = async (url: string) => {
    const error = await fetch(url).then((response) => response.body?.cancel(), (caught: unknown) => caught);
    assert.ok(error instanceof Error, "fetch did not fail");
    return error;
  };

  test("summarize() of this runtime's fetch to a closed port is TypeError ECONNREFUSED 127.0.0.1:<port>", async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/metadata/identity/oauth2/token?${QUERY}`;
    const summary = summarize(await failure(url), [], url);
    assert.deepEqual(shown(summary), {
      name: "TypeError",
      message: `ECONNREFUSED 127.0.0.1:${port}`,
      code: "ECONNREFUSED",
    });
    assertNoQuery(summary);
  });

  test("summarize() of this runtime's fetch to a server that closes without answering names the host and port, no query", async () => {
    const server = await closingServer();
    try {
      const url = `http://127.0.0.1:${server.port}/metadata/identity/oauth2/token?${QUERY}`;
      const summary = summarize(await failure(url), [], url);
      assert.equal(summary.name, "TypeError");
      assert.equal(summary.message, `ECONNRESET 127.0.0.1:${server.port}`);
      assertNoQuery(summary);
    } finally {
      await server.close();
    }
  });
});

/** Deno's permission error class, as `Deno.errors.NotCapable` is shaped (its name is an own property). */
class NotCapable extends Error {
  override name = "NotCapable";
}

describe("refusedFlag(): a runtime's permission refusal names the flag that grants it", () => {
  const denoNet = (target: string) =>
    new NotCapable(`Requires net access to "${target}", run again with the --allow-net flag`);

  test("refusedFlag() of Deno's NotCapable from fetch or node:net is --allow-net=<host:port>", () => {
    assert.equal(refusedFlag(denoNet("127.0.0.1:40342"), "net", "127.0.0.1:40342"), "--allow-net=127.0.0.1:40342");
    assert.equal(refusedFlag(denoNet("169.254.169.254:80"), "net", "169.254.169.254"), "--allow-net=169.254.169.254");
  });

  test("refusedFlag() finds a refusal wrapped as cause, at any depth", () => {
    const wrapped = new TypeError("fetch failed", { cause: new Error("inner", { cause: denoNet("[::1]:40342") }) });
    assert.equal(refusedFlag(wrapped, "net", "[::1]:40342"), "--allow-net=[::1]:40342");
  });

  test("refusedFlag() of a real Deno.errors.NotCapable", { skip: denoErrors() ? false : "Deno only" }, () => {
    const error = new (denoErrors()!.NotCapable)('Requires net access to "127.0.0.1:1"');
    assert.equal(refusedFlag(error, "net", "127.0.0.1:1"), "--allow-net=127.0.0.1:1");
  });

  test("refusedFlag() of any error named NotCapable (a custom fetch's) is a refusal", () => {
    assert.equal(refusedFlag(Object.assign(new Error("no"), { name: "NotCapable" }), "net", "h:1"), "--allow-net=h:1");
  });

  test("refusedFlag() of Deno's node:dns refusal (getaddrinfo EPERM, no NotCapable) is --allow-net", () => {
    // What Deno's node:net gives for connect({ host: "localhost" }) without --allow-net.
    const error = shaped("getaddrinfo EPERM localhost", {
      errno: -1,
      code: "EPERM",
      syscall: "getaddrinfo",
      hostname: "localhost",
    });
    assert.equal(refusedFlag(error, "net", "localhost:40342"), "--allow-net=localhost:40342");
  });

  test("refusedFlag() of Deno's read refusal is --allow-read=<path>", () => {
    const error = new NotCapable('Requires read access to "/k/a.key", run again with the --allow-read flag');
    assert.equal(refusedFlag(error, "read", "/k"), "--allow-read=/k");
  });

  test("refusedFlag() names the flag the runtime asked for when it is not the expected one", () => {
    const error = new NotCapable('Requires read access to "/etc/ca.pem", run again with the --allow-read flag');
    assert.equal(refusedFlag(error, "net", "127.0.0.1:40342"), "--allow-read");
  });

  test("refusedFlag() of PermissionDenied counts only Deno's permission message, not the OS's EACCES", () => {
    const older = Object.assign(
      new Error('network access to "127.0.0.1:40342", run again with the --allow-net flag'),
      { name: "PermissionDenied" },
    );
    assert.equal(refusedFlag(older, "net", "127.0.0.1:40342"), "--allow-net=127.0.0.1:40342");
    const os = Object.assign(new Error("Permission denied (os error 13)"), { name: "PermissionDenied" });
    assert.equal(refusedFlag(os, "net", "127.0.0.1:40342"), undefined);
  });

  test("refusedFlag() of Node's permission model (ERR_ACCESS_DENIED) names Node's flags", () => {
    const net = shaped("Access to this API has been restricted. Use --allow-net to manage permissions.", {
      code: "ERR_ACCESS_DENIED",
      permission: "Net",
    });
    assert.equal(refusedFlag(fetchFailed(net), "net", "127.0.0.1:40342"), "--allow-net");
    const read = shaped("Access to this API has been restricted", {
      code: "ERR_ACCESS_DENIED",
      permission: "FileSystemRead",
      resource: "/k/a.key",
    });
    assert.equal(refusedFlag(read, "read", "/k"), "--allow-fs-read=/k");
  });

  test("refusedFlag() of a connection failure or an OS permission error is undefined", () => {
    for (const runtimes of Object.values(SHAPES)) {
      for (const error of Object.values(runtimes)) {
        assert.equal(refusedFlag(error, "net", "127.0.0.1:40342"), undefined);
      }
    }
    assert.equal(refusedFlag(shaped("EACCES", { code: "EACCES" }), "read", "/k"), undefined);
    assert.equal(refusedFlag(nodeSocket("EPERM", -1, "connect"), "net", "127.0.0.1:40342"), undefined);
    assert.equal(refusedFlag(undefined, "net", "h"), undefined);
    assert.equal(refusedFlag("NotCapable", "net", "h"), undefined);
  });
});

function denoErrors(): { NotCapable: new (message: string) => Error } | undefined {
  return (globalThis as { Deno?: { errors: { NotCapable: new (message: string) => Error } } }).Deno?.errors;
}
