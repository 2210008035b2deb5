/**
 * A local App Service endpoint for the benchmarks: answers every token request after a short
 * delay (so concurrent cold calls overlap, as they do against a real endpoint) and counts the
 * requests per resource. `GET /__count?resource=...` reads a count.
 */

/** The shared secret the benchmark processes send as `X-IDENTITY-HEADER`. */
export const BENCH_HEADER = "bench-identity-header";

/** A running endpoint. */
export interface BenchEndpoint {
  readonly url: string;
  count(resource: string): number;
  close(): Promise<void>;
}

/** Starts the endpoint on a random loopback port. */
export function startEndpoint(delayMs = 20): BenchEndpoint {
  const counts = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const resource = url.searchParams.get("resource") ?? "";
    if (url.pathname === "/__count") return Response.json(counts.get(resource) ?? 0);
    if (request.headers.get("x-identity-header") !== BENCH_HEADER) {
      return Response.json({ statusCode: 400, message: "missing X-IDENTITY-HEADER" }, { status: 400 });
    }
    counts.set(resource, (counts.get(resource) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return Response.json({
      access_token: `bench-token-${crypto.randomUUID()}`,
      expires_on: String(Math.floor(Date.now() / 1000) + 3600),
      resource,
      token_type: "Bearer",
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/msi/token`,
    count: (resource) => counts.get(resource) ?? 0,
    close: () => server.shutdown(),
  };
}
