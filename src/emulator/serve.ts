/**
 * Runs the emulated endpoints on loopback with the runtime's own server (Deno.serve, Bun.serve
 * or node:http / node:https) and tells which environment variables point a client at them.
 * Service Fabric is served over HTTPS with the development certificate (dev_cert.ts), whose
 * thumbprint goes into `IDENTITY_SERVER_THUMBPRINT`, with the development authority as its chain;
 * workload identity's Entra endpoint over plain HTTP on loopback (which the client allows for an
 * authority host), with its federated token file. Every server also answers the OpenID
 * configuration and the keys that validate the emulator's tokens (discovery.ts).
 *
 * Whatever a client sends, a server answers or drops the request and goes on serving: a request
 * the emulator cannot turn into a Web `Request` (a method such as `TRACE`, a Host that is not a
 * host and port) is refused with a 4xx before any handler sees it, a body is read up to
 * {@linkcode MAX_REQUEST_BODY_BYTES} and no further (413), within {@linkcode BODY_DEADLINE_MS}
 * (408), a client that hangs up costs nothing, and a handler that throws is a 500.
 * @module
 */

import type { Source } from "../types.ts";
import { DEV_CA_CERTIFICATE, DEV_CERTIFICATE, DEV_CERTIFICATE_THUMBPRINT, DEV_PRIVATE_KEY } from "./dev_cert.ts";
import { createEmulator, type Emulator, type EmulatorOptions } from "./emulator.ts";
import { ALL_SOURCES } from "./faults.ts";
import { listenRefused } from "./permission.ts";
import { EMULATOR_TENANT } from "./token.ts";

export { ALL_SOURCES };

/** Options of {@linkcode serve}. */
export interface ServeOptions extends EmulatorOptions {
  /**
   * The sources to serve. Default all seven ({@linkcode ALL_SOURCES}); with an `origin`,
   * `AppService` alone, and only `AppService` and `DefaultToIMDS` may be given.
   */
  readonly sources?: readonly Source[];
  /** The first port (the next sources take the following ones); 0 picks free ports. Default 0. */
  readonly port?: number;
  /**
   * The address to listen on. Default `127.0.0.1`. With an `origin`, anyone who can reach
   * another address and holds the secret gets the origin's tokens, and anyone who can reach the
   * IMDS endpoint gets them without a secret (docs/relay.md).
   */
  readonly hostname?: string;
}

/** Emulated endpoints that are listening. */
export interface RunningEmulator {
  /** The emulator behind the servers (identities, secret, requests, faults). */
  readonly emulator: Emulator;
  /** Per source, the environment variables that make a client detect and reach it. */
  readonly env: Readonly<Partial<Record<Source, Readonly<Record<string, string>>>>>;
  /** Per source, the endpoint URL. */
  readonly urls: Readonly<Partial<Record<Source, string>>>;
  /**
   * The SHA-1 thumbprint of the Service Fabric endpoint's development certificate (the server
   * certificate, not its authority): {@linkcode DEV_CERTIFICATE_THUMBPRINT}.
   */
  readonly thumbprint: string;
  /** The issuer an API validating the emulator's tokens expects: `https://sts.windows.net/{tenant}/`. */
  readonly issuer: string;
  /**
   * The URL of the OpenID configuration (v1, whose `issuer` the tokens carry):
   * `<origin>/{tenant}/.well-known/openid-configuration` on the WorkloadIdentity server when it
   * is served (the v2.0 document's `token_endpoint` is then the one it answers), else on the
   * first plain-HTTP one, else on Service Fabric's HTTPS one (trust
   * {@linkcode DEV_CA_CERTIFICATE} to read it). Every server answers it, each with its own
   * origin in the URLs.
   */
  readonly openIdConfiguration: string;
  /** The URL of the keys (JSON Web Key Set) on the same server: `<origin>/{tenant}/discovery/keys`. */
  readonly jwksUri: string;
  /**
   * Stops every server, dropping the connections still open (a client that holds one does not
   * hold this up), and removes the Arc key files and the federated token file.
   */
  close(): Promise<void>;
}

type Handler = (request: Request) => Promise<Response>;

/** How often a running emulator checks whether the federated token file is due for rotation. */
const ROTATION_CHECK_MS = 60_000;
interface Listening {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The largest request body the servers read, 64 KiB: every protocol's request fits many times
 * over (Entra's form with a federated token is a few KB). A larger body is refused with 413, at
 * once when its Content-Length says so, else as soon as one byte more has arrived; no more than
 * this is ever held for one request.
 */
export const MAX_REQUEST_BODY_BYTES = 65_536;

/** How long a request's body may take to arrive once its head has: then 408. */
export const BODY_DEADLINE_MS = 10_000;

// node:http's own deadlines, shorter than its defaults (60 s for a head, 300 s for a request).
const HEAD_DEADLINE_MS = 10_000;
const REQUEST_DEADLINE_MS = 30_000;
/**
 * After a refusal sent before the body was read (413, 408), how long node:http keeps discarding
 * what the client still sends before closing: closing at once could reset the connection before
 * the client has read the refusal.
 */
const LINGER_MS = 1_000;

/** Methods a Web Request cannot carry, none of which the emulator serves. */
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A Host header: a DNS name or IPv4 address, or an IPv6 address in brackets, then an optional port. */
const HOST = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._-]{1,253})(?::([0-9]{1,5}))?$/;

function validHost(value: string): boolean {
  const match = HOST.exec(value);
  return match !== null && (match[1] === undefined || Number(match[1]) <= 65_535);
}

/** A refusal before any handler: JSON in IMDS's error shape, with the connection closed after it. */
function refusal(status: number, error: string, description: string, headers: Record<string, string> = {}): Response {
  return Response.json({ error, error_description: description }, {
    status,
    headers: { connection: "close", ...headers },
  });
}

const REFUSALS = {
  400: () =>
    refusal(400, "invalid_request", "The request ended before its body did, or is not one the emulator can read"),
  408: () => refusal(408, "request_timeout", `The request body took longer than ${BODY_DEADLINE_MS} ms to arrive`),
  413: () =>
    refusal(
      413,
      "request_too_large",
      `The request body is larger than the emulator reads, ${MAX_REQUEST_BODY_BYTES} bytes`,
    ),
} as const;

/** What a server hands over: the parts of a request, not yet checked. */
interface Arrival {
  readonly method: string;
  /** The request's URL; empty when the server could not make one. */
  readonly url: string;
  readonly headers: Headers;
  readonly body: ReadableStream<Uint8Array> | null;
  /**
   * Whether a body the emulator refuses is cancelled (node:http and Bun stop reading it) or left
   * unread. Deno.serve answers a cancelled body by reading the rest of it to its end, on the one
   * thread that serves every connection: a client that keeps sending held every answer of that
   * server for as long as it sent (seconds for 1 GiB). Left unread, the body is held back by
   * backpressure and the connection stays open, idle, until the client closes it.
   */
  readonly cancelRefusedBody: boolean;
  /**
   * The signal that aborts when the client goes away, read only when the handler reads it: on
   * Deno, reading a Deno.serve request's signal at all logs a warning about its legacy abort.
   */
  signal(): AbortSignal;
}

/** Reads a body up to `cap` bytes within `deadlineMs`: the bytes, or the status that refuses it. */
async function readBody(
  body: ReadableStream<Uint8Array>,
  cap: number,
  deadlineMs: number,
  cancelRefused: boolean,
): Promise<Uint8Array<ArrayBuffer> | keyof typeof REFUSALS> {
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  let done = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), deadlineMs));
  try {
    while (!done) {
      const next = await Promise.race([reader.read(), late]);
      if (next === "late") return 408;
      if (next.done) {
        done = true;
      } else {
        size += next.value.byteLength;
        // What arrived past the cap is dropped with the rest: nothing more is read.
        if (size > cap) return 413;
        parts.push(next.value);
      }
    }
  } catch {
    return 400; // the client hung up mid-body, or sent a broken one
  } finally {
    clearTimeout(timer);
    if (!done && cancelRefused) reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.byteLength;
  }
  return bytes;
}

/** Checks what arrived and reads its body: the Request for the handler, or the refusal. */
async function admit(arrival: Arrival): Promise<Request | Response> {
  const { method, headers } = arrival;
  const refuse = (response: Response) => {
    if (arrival.cancelRefusedBody) arrival.body?.cancel().catch(() => {});
    return response;
  };
  if (!METHOD.test(method) || FORBIDDEN_METHODS.has(method.toUpperCase())) {
    return refuse(
      refusal(405, "method_not_allowed", "The emulator does not serve this method", { allow: "GET, HEAD, POST" }),
    );
  }
  const host = headers.get("host");
  if (host !== null && !validHost(host)) {
    return refuse(refusal(400, "invalid_request", "The Host header is not a host name or address and a port"));
  }
  let url: URL;
  try {
    url = new URL(arrival.url);
  } catch {
    return refuse(refusal(400, "invalid_request", "The request target is not a path on this server"));
  }
  const length = headers.get("content-length");
  if (length !== null) {
    if (!/^[0-9]+$/.test(length)) {
      return refuse(refusal(400, "invalid_request", "The Content-Length header is not a number"));
    }
    // At once, before any of the body is read.
    if (length.length > 15 || Number(length) > MAX_REQUEST_BODY_BYTES) return refuse(REFUSALS[413]());
  }
  let body: Uint8Array<ArrayBuffer> | undefined;
  if (arrival.body) {
    const read = await readBody(arrival.body, MAX_REQUEST_BODY_BYTES, BODY_DEADLINE_MS, arrival.cancelRefusedBody);
    if (typeof read === "number") return REFUSALS[read]();
    body = read;
  }
  const bodyless = ["GET", "HEAD"].includes(method.toUpperCase());
  const request = new Request(url, { method, headers, body: bodyless ? undefined : body });
  Object.defineProperty(request, "signal", { get: arrival.signal, configurable: true });
  return request;
}

/**
 * The handler behind every server: each request checked and its body read within bounds first,
 * refused with a 4xx when it cannot be served, and a 500 when the handler throws.
 */
function guard(handler: Handler): (arrival: Arrival) => Promise<Response> {
  return async (arrival) => {
    let admitted: Request | Response;
    try {
      admitted = await admit(arrival);
    } catch {
      admitted = refusal(400, "invalid_request", "The emulator cannot read this request");
    }
    if (admitted instanceof Response) return admitted;
    try {
      return await handler(admitted);
    } catch (error) {
      // Not the runtime's own 500 (Deno logs a stack trace, Bun sends a page and exits 1 at the end).
      return Response.json({ error: "emulator_error", error_description: String(error) }, { status: 500 });
    }
  };
}

/** A Web Request's parts, as Deno.serve and Bun.serve give them. */
const arrivalOf = (request: Request, cancelRefusedBody: boolean): Arrival => ({
  method: request.method,
  url: request.url,
  headers: request.headers,
  body: request.body,
  cancelRefusedBody,
  signal: () => request.signal,
});

/** The SHA-1 thumbprint (upper-case hex) of a PEM certificate. */
export async function pemThumbprint(pem: string): Promise<string> {
  const base64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", der));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

interface DenoView {
  serve(
    options: {
      hostname: string;
      port: number;
      cert?: string;
      key?: string;
      signal: AbortSignal;
      onListen?: () => void;
    },
    handler: Handler,
  ): { addr: { port: number }; finished: Promise<void> };
}
interface BunView {
  serve(options: {
    hostname: string;
    port: number;
    fetch: Handler;
    error: () => Response;
    development: boolean;
    tls?: { cert: string; key: string };
  }): { port: number; stop(force?: boolean): unknown };
}
interface NodeServer {
  listen(port: number, hostname: string, callback: () => void): void;
  once(event: "error", listener: (error: Error) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  on(event: "checkContinue", listener: NodeListener): void;
  address(): { port: number };
  close(callback: () => void): void;
  closeAllConnections?(): void;
}
interface NodeRequest {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  complete: boolean;
  socket: { destroy(): void };
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "close", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}
interface NodeResponse {
  writeHead(status: number, headers: Record<string, string>): void;
  writeContinue(): void;
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  writableFinished: boolean;
  on(event: "close", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  once(event: "drain" | "close", listener: () => void): unknown;
}
type NodeListener = (request: NodeRequest, response: NodeResponse) => void;
interface NodeHttp {
  createServer(options: NodeServerOptions, listener: NodeListener): NodeServer;
}
interface NodeServerOptions {
  headersTimeout: number;
  requestTimeout: number;
  cert?: string;
  key?: string;
}

/**
 * node:http's request body as a Web stream that reads only as fast as it is read (the socket is
 * paused in between) and stops reading when cancelled; a client that hangs up mid-body errors it.
 */
function nodeBody(incoming: NodeRequest): ReadableStream<Uint8Array> {
  let open = true;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      incoming.on("data", (chunk) => {
        if (!open) return; // cancelled: what still comes is discarded
        controller.enqueue(chunk);
        if ((controller.desiredSize ?? 0) <= 0) incoming.pause();
      });
      incoming.on("end", () => {
        if (open) controller.close();
        open = false;
      });
      incoming.on("close", () => {
        if (open) controller.error(new Error("The client hung up before the body ended"));
        open = false;
      });
    },
    pull() {
      if (open) incoming.resume();
    },
    cancel() {
      open = false;
      incoming.pause();
    },
  });
}

/** Adapts the guarded handler to node:http: the request's parts in, the Response streamed out. */
function nodeListener(
  guarded: (arrival: Arrival) => Promise<Response>,
  scheme: string,
  authority: () => string,
): NodeListener {
  return (incoming, outgoing) => {
    // A client that hangs up: its body stream errors (nodeBody), the answer goes nowhere.
    incoming.on("error", () => {});
    outgoing.on("error", () => {});
    const controller = new AbortController();
    // The client gone before the answer was complete (node's request "close" comes as soon as the
    // body has been read, so the response's is the one that tells).
    outgoing.on("close", () => {
      if (!outgoing.writableFinished) controller.abort();
    });
    const answer = async () => {
      const headers = new Headers();
      const raw = incoming.rawHeaders;
      for (let index = 0; index + 1 < raw.length; index += 2) headers.append(raw[index]!, raw[index + 1]!);
      const target = incoming.url ?? "";
      const response = await guarded({
        method: incoming.method ?? "",
        // Origin-form only ("/path?query"): node:http leaves the Host header to the application.
        url: target.startsWith("/") ? `${scheme}://${headers.get("host") ?? authority()}${target}` : "",
        headers,
        body: nodeBody(incoming),
        cancelRefusedBody: true,
        signal: () => controller.signal,
      });
      outgoing.writeHead(response.status, Object.fromEntries(response.headers));
      try {
        if (response.body) {
          for await (const chunk of response.body) {
            if (!outgoing.write(chunk)) {
              await new Promise<void>((resolve) => {
                outgoing.once("drain", resolve);
                outgoing.once("close", resolve);
              });
            }
          }
        }
        outgoing.end();
      } catch {
        outgoing.destroy(); // an emulated dropped connection
        return;
      }
      if (!incoming.complete) {
        // Refused before the body was read: discard the rest while the client reads the answer.
        incoming.resume();
        const timer = setTimeout(() => incoming.socket.destroy(), LINGER_MS) as { unref?: () => void };
        timer.unref?.();
      }
    };
    answer().catch(() => {
      // Headers the Web's Headers refuse, or a server that failed mid-answer: the request is dropped.
      outgoing.destroy();
    });
  };
}

async function listen(handler: Handler, hostname: string, port: number, tls: boolean): Promise<Listening> {
  const runtime = globalThis as { Deno?: DenoView; Bun?: BunView };
  const guarded = guard(handler);
  // The server certificate, then its authority: a chain a client can verify from the authority.
  const certificate = tls ? { cert: `${DEV_CERTIFICATE}${DEV_CA_CERTIFICATE}`, key: DEV_PRIVATE_KEY } : undefined;
  if (runtime.Deno) {
    // Closed through its signal, which drops every connection, as node:http's closeAllConnections()
    // and Bun's stop(true) do: shutdown() waits for each client to hang up, and one that keeps a
    // connection open after its answer (a refused body it still holds) kept close() waiting.
    const stop = new AbortController();
    const server = runtime.Deno.serve(
      { hostname, port, ...certificate, signal: stop.signal, onListen() {} },
      (request) => guarded(arrivalOf(request, false)),
    );
    return {
      port: server.addr.port,
      close: () => {
        stop.abort();
        return server.finished;
      },
    };
  }
  if (runtime.Bun) {
    const server = runtime.Bun.serve({
      hostname,
      port,
      fetch: (request) => guarded(arrivalOf(request, true)),
      // Never Bun's development error page (a stack trace in HTML); the guard answers errors itself.
      development: false,
      error: () => refusal(500, "emulator_error", "The emulator failed to answer"),
      ...(certificate ? { tls: certificate } : {}),
    });
    return {
      port: server.port,
      close: async () => {
        await server.stop(true);
      },
    };
  }
  const load = (globalThis as { process?: { getBuiltinModule?: (name: string) => unknown } }).process
    ?.getBuiltinModule;
  const http = load?.(tls ? "node:https" : "node:http") as NodeHttp | undefined;
  if (!http) throw new Error("No server is available in this runtime");
  let authority = hostname.includes(":") ? `[${hostname}]` : hostname;
  const listener = nodeListener(guarded, tls ? "https" : "http", () => authority);
  const server = http.createServer(
    { headersTimeout: HEAD_DEADLINE_MS, requestTimeout: REQUEST_DEADLINE_MS, ...certificate },
    listener,
  );
  // Expect: 100-continue: invite the body only when its declared length is within the cap.
  server.on("checkContinue", (incoming, outgoing) => {
    const length = Number(incoming.headers["content-length"] ?? 0);
    if (length <= MAX_REQUEST_BODY_BYTES) outgoing.writeContinue();
    listener(incoming, outgoing);
  });
  // A taken port is an "error" event on node:http: reject instead of crashing the process.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, resolve);
  });
  // Later "error" events (a failed accept when the process is out of file descriptors) would end
  // the process: the server goes on listening instead.
  server.on("error", () => {});
  authority = `${authority}:${server.address().port}`;
  return {
    port: server.address().port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/**
 * Starts emulated endpoints on loopback and returns the environment variables for each.
 *
 * On Deno this needs `--allow-net=127.0.0.1`, for Azure Arc `--allow-write` to its key
 * directory, and for workload identity `--allow-read` and `--allow-write` where the federated
 * token file goes (`federatedTokenDirectory`, by default the temporary directory, whose name
 * also needs `--allow-env=TMPDIR,TMP,TEMP`); a refused permission is an error whose one-line message
 * names the flag (docs/permissions.md, "The emulator"). The token file is rewritten
 * before it expires, as the kubelet does, for as long as the servers run.
 *
 * @example Serve App Service and point a client at it
 * ```ts ignore
 * import { serve } from "@azmi/managed-identity/emulator";
 * import { ManagedIdentityClient } from "@azmi/managed-identity";
 *
 * const running = await serve({ sources: ["AppService"] });
 * const client = new ManagedIdentityClient({ env: running.env.AppService });
 * console.log((await client.acquireToken("https://vault.azure.net")).accessToken);
 * await running.close();
 * ```
 */
export async function serve(options?: ServeOptions): Promise<RunningEmulator> {
  if (options === undefined) options = {};
  const sources = options.sources ?? (options.origin ? ["AppService"] : ALL_SOURCES);
  const emulator = createEmulator(options);
  // Every handler before any file or server: with an origin, a source it cannot serve throws here.
  const handlers = new Map(sources.map((source) => [source, emulator.handler(source)]));
  const hostname = options.hostname ?? "127.0.0.1";
  const thumbprint = DEV_CERTIFICATE_THUMBPRINT;
  const servers: Listening[] = [];
  const origins = new Map<Source, string>();
  const env: Partial<Record<Source, Record<string, string>>> = {};
  const urls: Partial<Record<Source, string>> = {};
  let rotation: ReturnType<typeof setInterval> | undefined;
  try {
    // The token signing key, made now rather than by the first token request (a relay signs nothing).
    if (!options.origin) await emulator.jwks();
    const tokenFile = sources.includes("WorkloadIdentity") ? await emulator.federatedTokenFile() : undefined;
    if (tokenFile) {
      // Keeps the token file fresh while no request comes (the endpoint also does on each request).
      rotation = setInterval(() => emulator.federatedTokenFile().catch(() => {}), ROTATION_CHECK_MS);
    }
    for (const [index, source] of sources.entries()) {
      const tls = source === "ServiceFabric";
      const server = await listen(handlers.get(source)!, hostname, options.port ? options.port + index : 0, tls);
      servers.push(server);
      const origin = `${tls ? "https" : "http"}://${
        hostname.includes(":") ? `[${hostname}]` : hostname
      }:${server.port}`;
      origins.set(source, origin);
      const token = `${origin}/metadata/identity/oauth2/token`;
      urls[source] = source === "WorkloadIdentity"
        ? `${origin}/${EMULATOR_TENANT}/oauth2/v2.0/token`
        : source === "DefaultToIMDS" || source === "AzureArc"
        ? token
        : `${origin}/msi/token`;
      env[source] = source === "WorkloadIdentity"
        ? {
          AZURE_FEDERATED_TOKEN_FILE: tokenFile!,
          AZURE_TENANT_ID: EMULATOR_TENANT,
          AZURE_CLIENT_ID: emulator.systemIdentity.clientId,
          // As the AKS webhook sets it: with a trailing slash.
          AZURE_AUTHORITY_HOST: `${origin}/`,
        }
        : source === "ServiceFabric"
        ? { IDENTITY_ENDPOINT: urls[source]!, IDENTITY_HEADER: emulator.secret, IDENTITY_SERVER_THUMBPRINT: thumbprint }
        : source === "AppService"
        ? { IDENTITY_ENDPOINT: urls[source]!, IDENTITY_HEADER: emulator.secret }
        : source === "AzureML"
        ? { MSI_ENDPOINT: urls[source]!, MSI_SECRET: emulator.secret }
        : source === "CloudShell"
        ? { MSI_ENDPOINT: urls[source]! }
        : source === "AzureArc"
        ? { IDENTITY_ENDPOINT: urls[source]!, IMDS_ENDPOINT: origin }
        : { AZURE_POD_IDENTITY_AUTHORITY_HOST: origin };
    }
  } catch (error) {
    clearInterval(rotation);
    await Promise.all(servers.map((server) => server.close()));
    await emulator.cleanup().catch(() => {});
    throw listenRefused(error, hostname) ?? error;
  }
  const discovery = origins.get("WorkloadIdentity") ??
    [...origins.values()].find((origin) => origin.startsWith("http:")) ?? [...origins.values()][0];
  const base = `${discovery}/${EMULATOR_TENANT}`;
  return {
    emulator,
    env,
    urls,
    thumbprint,
    issuer: emulator.issuer,
    openIdConfiguration: `${base}/.well-known/openid-configuration`,
    jwksUri: `${base}/discovery/keys`,
    async close() {
      clearInterval(rotation);
      // Requests a failure keeps waiting, or a relay's origin call (a tool run of up to 30 s),
      // would hold Deno's graceful shutdown.
      emulator.recover();
      emulator.relay?.clear();
      await Promise.all(servers.map((server) => server.close()));
      await emulator.cleanup();
    },
  };
}
