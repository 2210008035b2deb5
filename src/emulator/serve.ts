/**
 * Runs the emulated endpoints on loopback with the runtime's own server (Deno.serve, Bun.serve
 * or node:http / node:https) and tells which environment variables point a client at them.
 * Service Fabric is served over HTTPS with the development certificate (dev_cert.ts), whose
 * thumbprint goes into `IDENTITY_SERVER_THUMBPRINT`, with the development authority as its chain;
 * workload identity's Entra endpoint over plain HTTP on loopback (which the client allows for an
 * authority host), with its federated token file. Every server also answers the OpenID
 * configuration and the keys that validate the emulator's tokens (discovery.ts).
 * @module
 */

import type { Source } from "../types.ts";
import { DEV_CA_CERTIFICATE, DEV_CERTIFICATE, DEV_CERTIFICATE_THUMBPRINT, DEV_PRIVATE_KEY } from "./dev_cert.ts";
import { createEmulator, type Emulator, type EmulatorOptions } from "./emulator.ts";
import { listenRefused } from "./permission.ts";
import { EMULATOR_TENANT } from "./token.ts";

/** Every source, in detection order. */
export const ALL_SOURCES: readonly Source[] = [
  "WorkloadIdentity",
  "ServiceFabric",
  "AppService",
  "AzureML",
  "CloudShell",
  "AzureArc",
  "DefaultToIMDS",
];

/** Options of {@linkcode serve}. */
export interface ServeOptions extends EmulatorOptions {
  /** The sources to serve. Default all seven ({@linkcode ALL_SOURCES}). */
  readonly sources?: readonly Source[];
  /** The first port (the next sources take the following ones); 0 picks free ports. Default 0. */
  readonly port?: number;
  /** The address to listen on. Default `127.0.0.1`. */
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
  /** Stops every server and removes the Arc key files and the federated token file. */
  close(): Promise<void>;
}

type Handler = (request: Request) => Promise<Response>;

/** How often a running emulator checks whether the federated token file is due for rotation. */
const ROTATION_CHECK_MS = 60_000;
interface Listening {
  readonly port: number;
  close(): Promise<void>;
}

/** The SHA-1 thumbprint (upper-case hex) of a PEM certificate. */
export async function pemThumbprint(pem: string): Promise<string> {
  const base64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", der));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

interface DenoView {
  serve(
    options: { hostname: string; port: number; cert?: string; key?: string; onListen?: () => void },
    handler: Handler,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}
interface BunView {
  serve(options: {
    hostname: string;
    port: number;
    fetch: Handler;
    tls?: { cert: string; key: string };
  }): { port: number; stop(force?: boolean): unknown };
}
interface NodeServer {
  listen(port: number, hostname: string, callback: () => void): void;
  once(event: "error", listener: (error: Error) => void): void;
  address(): { port: number };
  close(callback: () => void): void;
  closeAllConnections?(): void;
}
interface NodeRequest extends AsyncIterable<Uint8Array<ArrayBuffer>> {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
  on(event: "close", listener: () => void): void;
}
interface NodeResponse {
  writeHead(status: number, headers: Record<string, string>): void;
  write(chunk: Uint8Array): void;
  end(): void;
  destroy(): void;
  writableEnded: boolean;
  on(event: "close", listener: () => void): void;
}
type NodeListener = (request: NodeRequest, response: NodeResponse) => void;
interface NodeHttp {
  createServer(listener: NodeListener): NodeServer;
  createServer(options: { cert: string; key: string }, listener: NodeListener): NodeServer;
}

/** Adapts a Web handler to node:http: a Request in, the Response streamed out. */
function nodeListener(handler: Handler, scheme: string): NodeListener {
  return async (incoming, outgoing) => {
    const controller = new AbortController();
    // The client hung up: the response closed before it ended (the request's own "close" comes
    // as soon as its body has been read, which would end a silent answer at once).
    outgoing.on("close", () => {
      if (!outgoing.writableEnded) controller.abort();
    });
    const chunks: Uint8Array<ArrayBuffer>[] = [];
    for await (const chunk of incoming) chunks.push(chunk);
    const headers = new Headers();
    for (const [name, value] of Object.entries(incoming.headers)) {
      if (typeof value === "string") headers.set(name, value);
    }
    const method = incoming.method ?? "GET";
    const request = new Request(`${scheme}://${headers.get("host") ?? "localhost"}${incoming.url ?? "/"}`, {
      method,
      headers,
      body: method === "GET" || method === "HEAD" ? undefined : new Blob(chunks),
      signal: controller.signal,
    });
    let response: Response;
    try {
      response = await handler(request);
    } catch (error) {
      // As Deno.serve and Bun.serve do: a handler that throws is a 500, not a dead process.
      response = Response.json({ error: "emulator_error", error_description: String(error) }, { status: 500 });
    }
    outgoing.writeHead(response.status, Object.fromEntries(response.headers));
    try {
      if (response.body) { for await (const chunk of response.body) outgoing.write(chunk); }
      outgoing.end();
    } catch {
      outgoing.destroy(); // an emulated dropped connection
    }
  };
}

async function listen(handler: Handler, hostname: string, port: number, tls: boolean): Promise<Listening> {
  const runtime = globalThis as { Deno?: DenoView; Bun?: BunView };
  // The server certificate, then its authority: a chain a client can verify from the authority.
  const certificate = tls ? { cert: `${DEV_CERTIFICATE}${DEV_CA_CERTIFICATE}`, key: DEV_PRIVATE_KEY } : undefined;
  if (runtime.Deno) {
    const server = runtime.Deno.serve({ hostname, port, ...certificate, onListen() {} }, handler);
    return { port: server.addr.port, close: () => server.shutdown() };
  }
  if (runtime.Bun) {
    const server = runtime.Bun.serve({ hostname, port, fetch: handler, ...(certificate ? { tls: certificate } : {}) });
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
  const listener = nodeListener(handler, tls ? "https" : "http");
  const server = certificate ? http.createServer(certificate, listener) : http.createServer(listener);
  // A taken port is an "error" event on node:http: reject instead of crashing the process.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, resolve);
  });
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
 * names the flag (README, "Permissions of the emulator on Deno"). The token file is rewritten
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
export async function serve(options: ServeOptions = {}): Promise<RunningEmulator> {
  const emulator = createEmulator(options);
  const hostname = options.hostname ?? "127.0.0.1";
  const sources = options.sources ?? ALL_SOURCES;
  const thumbprint = DEV_CERTIFICATE_THUMBPRINT;
  const servers: Listening[] = [];
  const origins = new Map<Source, string>();
  const env: Partial<Record<Source, Record<string, string>>> = {};
  const urls: Partial<Record<Source, string>> = {};
  let rotation: ReturnType<typeof setInterval> | undefined;
  try {
    // The token signing key, made now rather than by the first token request.
    await emulator.jwks();
    const tokenFile = sources.includes("WorkloadIdentity") ? await emulator.federatedTokenFile() : undefined;
    if (tokenFile) {
      // Keeps the token file fresh while no request comes (the endpoint also does on each request).
      rotation = setInterval(() => emulator.federatedTokenFile().catch(() => {}), ROTATION_CHECK_MS);
    }
    for (const [index, source] of sources.entries()) {
      const tls = source === "ServiceFabric";
      const server = await listen(emulator.handler(source), hostname, options.port ? options.port + index : 0, tls);
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
      // Requests a failure keeps waiting would hold Deno's graceful shutdown forever.
      emulator.recover();
      await Promise.all(servers.map((server) => server.close()));
      await emulator.cleanup();
    },
  };
}
