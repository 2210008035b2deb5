/**
 * The module's size as users pay for it: `deno bundle --minify --code-splitting mod.ts`, each
 * output file gzipped. "Eager" is what importing the module loads (the entry and the chunks it
 * imports statically); the Azure Arc key-file rules and Service Fabric's pinned TLS are chunks
 * loaded with `import()` only on those sources' paths. `--check` fails when the eager part or
 * the whole is over its budget (CI runs it: the figures are deterministic).
 *
 *   deno run -A bench/size.ts [--check]
 */

/**
 * The budget of what `import "@azmi/managed-identity"` loads, minified and gzipped. Issue 4 set
 * 8 KB (the retry engine of issue 5 took it to 8.4 KB for a while; moving Arc's reply rules into
 * the lazily loaded Arc chunk brought it back to 7.8 KB). Issue 9's checks that every request
 * needs took it to 8.3 KB: the endpoint host rule at construction, the expiry sanity rule, the
 * cache's injective key, write counter and refresh hold. Its failure-only parts (the redaction
 * gate, error-body parsing, runtime error summaries: 1.1 KB) load with `import()` on the first
 * failure, so they are not counted here. Issue 10's check of the first contact with IMDS, made
 * before each IMDS request, took it to 8.5 KB; the probe itself loads only until IMDS has
 * answered once. Issue 11's seventh source, AKS workload identity (its definition, detection
 * rule, Entra retry rules and the authority host rule), took it to 9.4 KB; its token file rules
 * load on that source's path only. Issue 16 took it to 9.7 KB (9,901 B): the choice of the local
 * sources' direct transport (loaded on first use), what the IMDS probe learns kept per `fetch`,
 * the endpoint pinned at construction for every source, Service Fabric's object ID and retry rules.
 * Issue 17 took it to 9,966 B: one rule for a URL's `user:password@` in every notation a URL
 * parser reads (errors quoted `http:\\user:pw@host` whole), shared with the CLI.
 */
export const EAGER_BUDGET_BYTES = 9.75 * 1024;
/**
 * The budget of every chunk together, Arc, Service Fabric, workload identity's token file, the
 * failure path and IMDS's first contact included: 18 KB after issue 11. The Arc key-file rules
 * and the pinned TLS client add 4.7 KB, loaded only by those sources; the token file rules and
 * the file reading they share with Arc 1.4 KB; the failure path 2 KB, loaded on the first
 * failure; the first contact 0.7 KB, loaded until IMDS has answered. Issue 4's 8 KB for the
 * whole module is not met. Issue 16 took it to 21.2 KB (21,744 B), on paths that load only when
 * needed: the redaction gate reads a bounded window with a guard at its edge and searches for
 * secrets in linear time past control and format characters (the failure chunk 0.8 to 1.5 KB);
 * Deno's and older Bun's connection failures are read as Node's errno codes, and a runtime's
 * permission refusal is told from "nothing answered", naming the flag to add; the local sources'
 * direct HTTP/1.1 transport, which no proxy sees, shares Service Fabric's reader (the pinned
 * TLS chunk becomes a shared HTTP/1.1 chunk of 2.8 KB, loaded on the first request of any
 * source but workload identity); IMDS's first contact tells IMDS's answer from an impostor's.
 * Issue 17 took it to 21,950 B: `visible()`, the escaping of what is printed, in the failure
 * chunk that Azure Arc's rules share (its challenge path is refused and quoted through it).
 */
export const WHOLE_BUDGET_BYTES = 21.5 * 1024;

/** One output file of the bundle. */
export interface Chunk {
  readonly name: string;
  readonly minified: number;
  readonly gzipped: number;
  readonly eager: boolean;
}

async function gzipSize(bytes: Uint8Array<ArrayBuffer>): Promise<number> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

/** Bundles `entry` with code splitting and measures each output file. */
export async function bundleSizes(entry: string): Promise<Chunk[]> {
  const dir = await Deno.makeTempDir();
  try {
    const bundle = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--minify", "--code-splitting", "--platform", "deno", "--outdir", dir, entry],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!bundle.success) throw new Error(`deno bundle ${entry} failed: ${new TextDecoder().decode(bundle.stderr)}`);
    const files = new Map<string, Uint8Array<ArrayBuffer>>();
    for await (const file of Deno.readDir(dir)) files.set(file.name, await Deno.readFile(`${dir}/${file.name}`));
    // Eager: the entry and whatever it (transitively) imports with a static import, with bindings
    // (`import{a}from"./chunk.js"`, `export{b}from"./chunk.js"`) or for its effects alone
    // (`import"./chunk.js"`, which esbuild writes for a chunk of CommonJS wrappers).
    const entryName = entry.split("/").pop()!.replace(/\.ts$/, ".js");
    const eager = new Set<string>();
    const visit = (name: string) => {
      if (eager.has(name) || !files.has(name)) return;
      eager.add(name);
      const text = new TextDecoder().decode(files.get(name));
      for (const match of text.matchAll(/(?:^|[;}\s])(?:import|export)\s*(?:[^;("]*?from\s*)?"\.\/([^"]+)"/g)) {
        visit(match[1]!);
      }
    };
    visit(entryName);
    const chunks: Chunk[] = [];
    for (const [name, bytes] of files) {
      chunks.push({ name, minified: bytes.byteLength, gzipped: await gzipSize(bytes), eager: eager.has(name) });
    }
    return chunks.sort((a, b) => Number(b.eager) - Number(a.eager) || b.gzipped - a.gzipped);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Totals of a measurement. */
export function totals(chunks: readonly Chunk[]): { eager: number; whole: number; eagerMinified: number } {
  const sum = (list: readonly Chunk[], key: "gzipped" | "minified") => list.reduce((n, c) => n + c[key], 0);
  return {
    eager: sum(chunks.filter((c) => c.eager), "gzipped"),
    eagerMinified: sum(chunks.filter((c) => c.eager), "minified"),
    whole: sum(chunks, "gzipped"),
  };
}

if (import.meta.main) {
  const chunks = await bundleSizes(new URL("../mod.ts", import.meta.url).pathname);
  for (const chunk of chunks) {
    console.log(
      `${chunk.eager ? "eager" : "lazy "} ${chunk.name.padEnd(28)} ${String(chunk.minified).padStart(6)} B minified ${
        String(chunk.gzipped).padStart(5)
      } B gzipped`,
    );
  }
  const { eager, whole } = totals(chunks);
  console.log(
    `eager: ${eager} B gzipped (budget ${EAGER_BUDGET_BYTES}); whole: ${whole} B (budget ${WHOLE_BUDGET_BYTES})`,
  );
  if (Deno.args.includes("--check") && (eager > EAGER_BUDGET_BYTES || whole > WHOLE_BUDGET_BYTES)) {
    console.error("Over budget");
    Deno.exit(1);
  }
}
