/**
 * Requests a well-behaved client never sends, written byte by byte on node:net sockets to
 * 127.0.0.1, and a bounded load run that mixes them with normal token requests: what
 * tests/emulator_robust_test.ts and bench/emulator_load.ts throw at the emulator's servers.
 *
 * Every socket is bounded in time (each exchange ends at its deadline) and in what it writes
 * (a body is written from one reused buffer, only as fast as the server reads it), so the memory
 * the serving process grows by is the server's, not the attacker's.
 */

import { Buffer } from "node:buffer";
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { ManagedIdentityClient, type Source, TokenCache } from "../../mod.ts";
import { DEV_CA_CERTIFICATE } from "../../src/emulator/mod.ts";
import { blockOf } from "./emulate.ts";

/** One step of a raw exchange. */
export type Step =
  /** Bytes as written, one character per byte (latin1): `\0`, `\x7f` and `\xff` go out as they are. */
  | { readonly text: string }
  /** A body of `bytes` bytes of `a`, plain or in 16 KiB chunks (`chunked`), without the final `0` chunk. */
  | { readonly body: number; readonly chunked?: boolean }
  /** Wait this long before the next step. */
  | { readonly pauseMs: number }
  /** Close the connection abruptly (the client hangs up). */
  | { readonly hangup: true };

/** How an exchange ended. */
export interface Outcome {
  /** The status of the server's answer, when one came. */
  readonly status?: number;
  /** `answered` (a status line came), `dropped` (the server closed first), `held` (neither by the deadline), `hungup`. */
  readonly end: "answered" | "dropped" | "held" | "hungup";
  /** Body bytes written before the exchange ended. */
  readonly sent: number;
  /** Milliseconds from the connection to the end. */
  readonly ms: number;
}

const PIECE = Buffer.alloc(16 * 1024, "a");

/**
 * Connects to 127.0.0.1:`port` (over TLS, trusting the emulator's development CA, when `tls`),
 * runs `steps`, then waits for an answer until `deadlineMs` after the connection (body writing
 * stops as soon as an answer or a close comes), and closes.
 */
export function exchange(port: number, steps: readonly Step[], deadlineMs = 3_000, tls = false): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = tls
      ? tlsConnect({ host: "127.0.0.1", port, ca: DEV_CA_CERTIFICATE, servername: "localhost" })
      : connect(port, "127.0.0.1");
    let head = "";
    let sent = 0;
    let settled = false;
    /** The pause step under way: its timer, and how to end it early. */
    let pause: { readonly timer: ReturnType<typeof setTimeout>; readonly wake: () => void } | undefined;
    const finish = (end: Outcome["end"], status?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A pause still running would hold the event loop until it ran out: end it with the exchange.
      if (pause) {
        clearTimeout(pause.timer);
        pause.wake();
      }
      socket.destroy();
      resolve({ ...(status === undefined ? {} : { status }), end, sent, ms: Math.round(performance.now() - started) });
    };
    const timer = setTimeout(() => finish("held"), deadlineMs);
    socket.on("error", () => finish("dropped"));
    socket.on("close", () => finish("dropped"));
    socket.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      // An interim 1xx answer (100 Continue) is skipped: the final status is the answer.
      for (;;) {
        const status = /^HTTP\/\d(?:\.\d)? (\d{3})[^\r\n]*\r\n/.exec(head);
        if (!status) break;
        const code = Number(status[1]);
        if (code >= 200) return finish("answered", code);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        head = head.slice(end + 4);
      }
      if (head.length > 64 && !/^HTTP\/\d/.test(head)) finish("answered");
    });
    /** Writes, waiting for the socket to drain; false once the exchange has ended. */
    const write = (data: Buffer | string): Promise<boolean> =>
      new Promise((go) => {
        if (settled || socket.destroyed) return go(false);
        if (socket.write(data)) return go(true);
        const wake = () => {
          socket.off("drain", wake);
          socket.off("close", wake);
          go(!settled);
        };
        socket.once("drain", wake);
        socket.once("close", wake);
      });
    const run = async () => {
      await new Promise<void>((connected, failed) => {
        socket.once(tls ? "secureConnect" : "connect", connected);
        socket.once("error", failed);
      });
      for (const step of steps) {
        if (settled) return;
        if ("text" in step) {
          if (!await write(Buffer.from(step.text, "latin1"))) return;
        } else if ("pauseMs" in step) {
          await new Promise<void>((wake) => {
            pause = { timer: setTimeout(wake, Math.min(step.pauseMs, deadlineMs)), wake };
          });
          pause = undefined;
        } else if ("hangup" in step) {
          return finish("hungup");
        } else {
          while (sent < step.body && !settled && performance.now() - started < deadlineMs) {
            const piece = PIECE.subarray(0, Math.min(PIECE.length, step.body - sent));
            const framed = step.chunked ? `${piece.length.toString(16)}\r\n` : undefined;
            if (framed !== undefined && !await write(framed)) return;
            if (!await write(piece)) return;
            sent += piece.length;
            if (framed !== undefined && !await write("\r\n")) return;
          }
        }
      }
    };
    run().catch(() => finish("dropped"));
  });
}

/** A hostile request and what a server must do with it. */
export interface Attack {
  readonly name: string;
  readonly kind: "malformed" | "aborted" | "oversized";
  readonly steps: readonly Step[];
  /**
   * `refused`: a 4xx or a closed connection; `413`: exactly that status, at once (within the
   * deadline, before any body is sent); `gone`: the client hangs up, nothing to see; `idle`: an
   * incomplete request, which may also be held open until the deadline.
   */
  readonly expect: "refused" | "413" | "gone" | "idle";
  /** Other statuses allowed: 505 HTTP Version Not Supported (RFC 9110, 15.6.6) for a version no server speaks. */
  readonly also?: readonly number[];
}

const HOST = "Host: 127.0.0.1\r\n";
// What makes Cloud Shell's and Entra's endpoints read a POST body, so that an oversized one gets that far.
const FORM = "Metadata: true\r\nContent-Type: application/x-www-form-urlencoded\r\n";
const MiB = 1024 * 1024;

/**
 * Every hostile request, by kind, for the endpoint at `path`. The POSTs carry what makes Cloud
 * Shell and Entra read a body (`Metadata: true`, a form content type): an oversized body reaches
 * the reading, and a malformed request that gets through is one the endpoint refuses.
 */
export function attacks(path = "/"): readonly Attack[] {
  const refused = (name: string, text: string, also?: readonly number[]): Attack => ({
    name,
    kind: "malformed",
    steps: [{ text }],
    expect: "refused",
    ...(also ? { also } : {}),
  });
  return [
    refused("TRACE", `TRACE ${path} HTTP/1.1\r\n${HOST}\r\n`),
    refused("TRACK", `TRACK ${path} HTTP/1.1\r\n${HOST}\r\n`),
    refused("CONNECT", `CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n`),
    refused("a method that is not a token", `G(T ${path} HTTP/1.1\r\n${HOST}\r\n`),
    refused("Host: a^b", `GET ${path} HTTP/1.1\r\nHost: a^b\r\n\r\n`),
    refused("Host with a path", `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1/x?y#z\r\n\r\n`),
    refused("Host with user information", `GET ${path} HTTP/1.1\r\nHost: user:pass@127.0.0.1\r\n\r\n`),
    refused("Host with a port out of range", `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:99999\r\n\r\n`),
    refused("Host with an unclosed bracket", `GET ${path} HTTP/1.1\r\nHost: [::1\r\n\r\n`),
    refused("Host with a space", `GET ${path} HTTP/1.1\r\nHost: a b\r\n\r\n`),
    refused("Host empty", `GET ${path} HTTP/1.1\r\nHost:\r\n\r\n`),
    refused("two Host headers", `GET ${path} HTTP/1.1\r\n${HOST}Host: 127.0.0.2\r\n\r\n`),
    refused("a NUL in a header value", `GET ${path} HTTP/1.1\r\n${HOST}X-A: a\0b\r\n\r\n`),
    refused("DEL in a header name", `GET ${path} HTTP/1.1\r\n${HOST}X\x7fA: b\r\n\r\n`),
    refused("a byte above 0x7f in a header name", `GET ${path} HTTP/1.1\r\n${HOST}X\xffA: b\r\n\r\n`),
    refused("a header without a colon", `GET ${path} HTTP/1.1\r\n${HOST}no colon here\r\n\r\n`),
    refused("a TLS ClientHello on the plain port", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + "\0".repeat(32)),
    refused("a garbage request line", "\x01\x02\x03 GARBAGE \xff\xfe\r\n\r\n"),
    refused("a request line without a target", "GET\r\n\r\n"),
    refused("HTTP/0.9", `GET ${path}\r\n\r\n`, [505]),
    refused("HTTP/9.9", `GET ${path} HTTP/9.9\r\n${HOST}\r\n`, [505]),
    refused("a 64 KiB header", `GET ${path} HTTP/1.1\r\n${HOST}X-Big: ${"b".repeat(64 * 1024)}\r\n\r\n`),
    refused("a 1 MiB request target", `GET /${"p".repeat(MiB)} HTTP/1.1\r\n${HOST}\r\n`),
    refused(
      "Content-Length beyond 2^64",
      `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: 99999999999999999999999\r\n\r\n`,
    ),
    refused("Content-Length -1", `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: -1\r\n\r\n`),
    refused("Content-Length 1e3", `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: 1e3\r\n\r\n`),
    refused(
      "two Content-Lengths that differ",
      `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
    ),
    refused(
      "an Upgrade to WebSocket",
      `GET ${path} HTTP/1.1\r\n${HOST}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ),
    refused(
      "a chunk size that is not hex",
      `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n`,
    ),
    {
      name: "Content-Length of 1 TiB, no body sent",
      kind: "oversized",
      steps: [{ text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: 1099511627776\r\n\r\n` }],
      expect: "413",
    },
    {
      name: "Content-Length of 1 TiB with Expect: 100-continue",
      kind: "oversized",
      steps: [{
        text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Expect: 100-continue\r\nContent-Length: 1099511627776\r\n\r\n`,
      }],
      expect: "413",
    },
    {
      name: "Content-Length of 64 KiB + 1, no body sent",
      kind: "oversized",
      steps: [{ text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: 65537\r\n\r\n` }],
      expect: "413",
    },
    {
      name: "a 32 MiB body",
      kind: "oversized",
      steps: [{ text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: ${32 * MiB}\r\n\r\n` }, {
        body: 32 * MiB,
      }],
      expect: "refused",
    },
    {
      name: "a 32 MiB chunked body",
      kind: "oversized",
      steps: [{ text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Transfer-Encoding: chunked\r\n\r\n` }, {
        body: 32 * MiB,
        chunked: true,
      }],
      expect: "refused",
    },
    {
      name: "a chunked body that never ends (1 GiB of chunks, cut at the deadline)",
      kind: "oversized",
      steps: [{ text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Transfer-Encoding: chunked\r\n\r\n` }, {
        body: 1024 * MiB,
        chunked: true,
      }],
      expect: "refused",
    },
    {
      name: "hang up mid-head",
      kind: "aborted",
      steps: [{ text: `POST ${path} HTTP/1.1\r\nHost: 127.` }, { pauseMs: 20 }, { hangup: true }],
      expect: "gone",
    },
    {
      name: "hang up mid-body",
      kind: "aborted",
      steps: [{ text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: 1000\r\n\r\n` }, { body: 100 }, {
        pauseMs: 20,
      }, { hangup: true }],
      expect: "gone",
    },
    {
      name: "hang up mid-chunk",
      kind: "aborted",
      steps: [{ text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Transfer-Encoding: chunked\r\n\r\n400\r\nabc` }, {
        pauseMs: 20,
      }, { hangup: true }],
      expect: "gone",
    },
    {
      name: "hang up after a whole request, before the answer",
      kind: "aborted",
      steps: [{ text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: 3\r\n\r\nabc` }, { hangup: true }],
      expect: "gone",
    },
    {
      name: "a head that never ends (slowloris)",
      kind: "malformed",
      steps: [{ text: `GET ${path} HTTP/1.1\r\n${HOST}X-A: ` }, { pauseMs: 60_000 }],
      expect: "idle",
    },
    {
      name: "a body that stops short of its Content-Length",
      kind: "aborted",
      steps: [{ text: `POST ${path} HTTP/1.1\r\n${HOST}${FORM}Content-Length: 1000\r\n\r\n` }, { body: 10 }, {
        pauseMs: 60_000,
      }],
      expect: "idle",
    },
  ];
}

/** Whether an outcome is what the attack allows. */
export function acceptable(attack: Attack, outcome: Outcome): boolean {
  const status = outcome.end === "answered" ? outcome.status : undefined;
  const refusal = outcome.end === "dropped" ||
    (status !== undefined && ((status >= 400 && status < 500) || (attack.also ?? []).includes(status)));
  switch (attack.expect) {
    case "refused":
      return refusal;
    case "413":
      return outcome.end === "answered" && outcome.status === 413;
    case "gone":
      return outcome.end === "hungup" || refusal;
    case "idle":
      return outcome.end === "held" || refusal;
  }
}

/** Environment variables per source, as serve() gives them or `azmi emulate` prints them. */
export type SourceEnv = Readonly<Record<string, Readonly<Record<string, string>>>>;

/**
 * The `export NAME='value'` lines `azmi emulate` printed, per source: each source's block read
 * by emulate.ts's blockOf, which unquotes as a POSIX shell does (a `'\''` in a value too).
 */
export function exportedEnv(output: string): SourceEnv {
  const env: Record<string, Record<string, string>> = {};
  for (const [, source] of output.matchAll(/^# (\w+): https?:\/\//gm)) {
    const variables = blockOf(output, source as Source);
    if (Object.keys(variables).length > 0) env[source!] = variables;
  }
  return env;
}

/**
 * Normal token requests, one per source the environment names among App Service (GET), Cloud
 * Shell (a POST form) and workload identity (a POST form with the federated token), each
 * failing unless it gets a 200 with an access token. Plain `fetch` with no retries, so that no
 * failure is hidden.
 */
export function normalRequests(env: SourceEnv): (() => Promise<void>)[] {
  const resource = "https://vault.azure.net";
  const requests: (() => Promise<void>)[] = [];
  const expectToken = async (response: Response) => {
    const text = await response.text();
    if (response.status !== 200) throw new Error(`status ${response.status}: ${text.slice(0, 200)}`);
    const body = JSON.parse(text) as { access_token?: unknown };
    if (typeof body.access_token !== "string") throw new Error("no access_token in a 200");
  };
  const app = env.AppService;
  if (app) {
    requests.push(async () => {
      const url = `${app.IDENTITY_ENDPOINT}?resource=${encodeURIComponent(resource)}&api-version=2019-08-01`;
      await expectToken(
        await fetch(url, {
          headers: { "X-IDENTITY-HEADER": app.IDENTITY_HEADER! },
          signal: AbortSignal.timeout(10_000),
        }),
      );
    });
  }
  const shell = env.CloudShell;
  if (shell) {
    requests.push(async () => {
      await expectToken(
        await fetch(shell.MSI_ENDPOINT!, {
          method: "POST",
          headers: { Metadata: "true", "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ resource }),
          signal: AbortSignal.timeout(10_000),
        }),
      );
    });
  }
  const wi = env.WorkloadIdentity;
  if (wi) {
    requests.push(async () => {
      const assertion = (await readFile(wi.AZURE_FEDERATED_TOKEN_FILE!, "utf8")).trim();
      await expectToken(
        await fetch(`${wi.AZURE_AUTHORITY_HOST}${wi.AZURE_TENANT_ID}/oauth2/v2.0/token`, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({
            grant_type: "client_credentials",
            client_id: wi.AZURE_CLIENT_ID!,
            scope: `${resource}/.default`,
            client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            client_assertion: assertion,
          }),
          signal: AbortSignal.timeout(10_000),
        }),
      );
    });
  }
  const fabric = env.ServiceFabric;
  if (fabric) {
    // Over HTTPS pinned to the development certificate: the library's own client, with no retries.
    requests.push(async () => {
      const client = new ManagedIdentityClient({
        env: fabric,
        cache: new TokenCache(),
        imdsProbe: false,
        retry: false,
      });
      const token = await client.acquireToken(resource);
      if (!token.accessToken) throw new Error("no access token from Service Fabric");
    });
  }
  return requests;
}

/** The endpoints in `env`: port, token path, and whether it is HTTPS (Service Fabric's). */
export function targets(env: SourceEnv): { readonly port: number; readonly path: string; readonly tls: boolean }[] {
  const found: { port: number; path: string; tls: boolean }[] = [];
  for (const [source, variables] of Object.entries(env)) {
    const url = source === "WorkloadIdentity"
      ? `${variables.AZURE_AUTHORITY_HOST}${variables.AZURE_TENANT_ID}/oauth2/v2.0/token`
      : variables.IDENTITY_ENDPOINT ?? variables.MSI_ENDPOINT ?? variables.AZURE_POD_IDENTITY_AUTHORITY_HOST;
    if (url) {
      const parsed = new URL(url);
      found.push({
        port: Number(parsed.port),
        path: parsed.pathname === "/" ? "/metadata/identity/oauth2/token" : parsed.pathname,
        tls: parsed.protocol === "https:",
      });
    }
  }
  return found;
}

/** Options of {@linkcode loadRun}. */
export interface LoadOptions {
  /** The servers' environment, per source. */
  readonly env: SourceEnv;
  /** How many hostile requests in all (each attack in turn, spread over the ports). */
  readonly attacks: number;
  /** How many run at once. */
  readonly concurrency: number;
  /** How many normal token requests run beside them (one at a time, in turn over the sources). */
  readonly normal: number;
  /** The run stops starting new requests after this long. */
  readonly maxMs: number;
  /** Each raw exchange's deadline. */
  readonly exchangeMs?: number;
  /** The serving process's resident set size in bytes (sampled every 50 ms), when it can be read. */
  readonly rss?: () => number | undefined | Promise<number | undefined>;
}

/** What a load run saw. */
export interface LoadReport {
  readonly normal: { readonly ok: number; readonly failed: number; readonly errors: readonly string[] };
  readonly attacks: number;
  /** Attacks whose outcome the attack does not allow, with what happened. */
  readonly unexpected: readonly string[];
  /** How the attacks ended: `413`, `400`, ..., `dropped`, `held`, `hungup`. */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Resident set size before the run, at its peak and after, in bytes (when readable). */
  readonly rss?: { readonly before: number; readonly peak: number; readonly after: number };
  readonly ms: number;
}

/** Runs a bounded mix of hostile and normal requests against the servers `env` points at. */
export async function loadRun(options: LoadOptions): Promise<LoadReport> {
  const started = performance.now();
  const within = () => performance.now() - started < options.maxMs;
  const endpoints = targets(options.env).map((target) => ({ ...target, attacks: attacks(target.path) }));
  const normals = normalRequests(options.env);
  if (endpoints.length === 0 || normals.length === 0) throw new Error("the environment names no source");
  const count = endpoints[0]!.attacks.length;
  const outcomes: Record<string, number> = {};
  const unexpected: string[] = [];
  const errors: string[] = [];
  let ok = 0;
  let next = 0;
  const attacker = async () => {
    while (within()) {
      const index = next++;
      if (index >= options.attacks) return;
      const target = endpoints[Math.floor(index / count) % endpoints.length]!;
      const attack = target.attacks[index % count]!;
      const port = target.port;
      const outcome = await exchange(port, attack.steps, options.exchangeMs ?? 3_000, target.tls);
      const label = outcome.end === "answered" ? String(outcome.status ?? "answered") : outcome.end;
      outcomes[label] = (outcomes[label] ?? 0) + 1;
      if (!acceptable(attack, outcome)) {
        unexpected.push(`${attack.name} on port ${port}: ${label} after ${outcome.ms} ms`);
      }
    }
  };
  const normal = async () => {
    for (let index = 0; index < options.normal && within(); index++) {
      try {
        await normals[index % normals.length]!();
        ok++;
      } catch (error) {
        errors.push(String(error));
      }
    }
  };
  const rss = await rssDuring(
    options.rss ?? (() => undefined),
    () => Promise.all([normal(), ...Array.from({ length: options.concurrency }, attacker)]),
    50,
  );
  return {
    // The normal requests that did not run in time count as failures.
    normal: { ok, failed: options.normal - ok, errors },
    attacks: Math.min(next, options.attacks),
    unexpected,
    outcomes,
    ...(rss ? { rss } : {}),
    ms: Math.round(performance.now() - started),
  };
}

/**
 * A process's resident set size before `work`, at its peak while `work` runs (sampled every
 * `everyMs`) and after it; `undefined` when `rss` cannot read it.
 */
export async function rssDuring(
  rss: () => number | undefined | Promise<number | undefined>,
  work: () => Promise<unknown>,
  everyMs: number,
): Promise<{ before: number; peak: number; after: number } | undefined> {
  const before = await rss();
  let peak = before ?? 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling && before !== undefined) {
      peak = Math.max(peak, (await rss()) ?? 0);
      await new Promise((wake) => setTimeout(wake, everyMs));
    }
  })();
  try {
    await work();
  } finally {
    sampling = false;
    await sampler;
  }
  const after = await rss();
  if (before === undefined || after === undefined) return undefined;
  return { before, peak: Math.max(peak, after), after };
}

/** The resident set size of process `pid` from /proc (Linux), in bytes; undefined elsewhere. */
export async function procRss(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}
