/**
 * `deno task test`: runs the whole suite on Deno 2, Bun 1, Node 24 and Node 22, one after the
 * other, and fails when any runtime fails.
 *
 * Where each runtime comes from:
 * - Deno: the one running this script.
 * - Bun 1 and Node 24: `bun` and `node` from PATH when they are those major versions, else
 *   installed from the npm registry into `.runtimes/` (through Deno's own npm support, so a
 *   machine with nothing but Deno works).
 * - Node 22: the binary `AZMI_NODE22` names (an error if it is not Node 22), else `node` from
 *   PATH when it is Node 22, else `node@22` installed into `.runtimes/node22/`, a prefix of its
 *   own since `node@24` provides the same `node`.
 *
 * Node 22 runs the TypeScript sources with type stripping, the only TypeScript it is given
 * (unflagged from 22.18; 22.7 to 22.17 get `--experimental-strip-types` in NODE_OPTIONS, so that
 * the Node processes tests start get it too; 22.6's stripping leaves `readonly` before a
 * `#private` field in place, a syntax error).
 *
 * Node 22's test runner ends a test file whose event loop has emptied while a test still waits
 * (Node 24's keeps the loop alive by itself), and cancels that test and every one after it. The
 * fakes that never answer therefore hold the loop as a real connection or file open would
 * (tests/helpers/stall.ts, and the emulator's own `silent` and `hang`), so Node 22 runs the files
 * as they are. It gets `--test-timeout` so that a test that truly never ends fails instead of
 * hanging.
 *
 * Every runtime's figure is counted in one unit, test cases: Bun's and Node's own counts (a
 * `describe` block is not a test case), and for Deno the leaves of its JUnit report (Deno
 * reports a `describe` as a test and the tests in it as steps). The last line is
 * "N passed, M failed" over all runtimes.
 *
 * Usage: deno task test [deno|bun|node|node22 ...]
 */

import { locate, locateNode22, rootPath, runtimesPath } from "./helpers/runtimes.ts";

/**
 * What Node 22 needs beside Node 24's arguments: type stripping where it is flagged, given through
 * NODE_OPTIONS so that the Node processes the tests start get it too, and a bound on each test.
 * Not `--test-force-exit`, with which Node 22.23 sometimes exits before a file's last `describe`
 * blocks ran, and reports no error.
 */
function node22Setup([major, minor]: [number, number]): { args: string[]; env: Record<string, string> } {
  if (major !== 22 || minor < 7) {
    throw new Error(`Node ${major}.${minor} cannot run the TypeScript sources: Node 22.7 or later is needed`);
  }
  return {
    args: ["--test-timeout=120000"],
    env: minor < 18
      ? {
        NODE_OPTIONS:
          "--experimental-strip-types --disable-warning=ExperimentalWarning --disable-warning=MODULE_TYPELESS_PACKAGE_JSON",
      }
      : {},
  };
}

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  /** The names of the failed test cases, as the runtime reported them, for the closing summary. */
  names: string[];
}

// Bun's and Node's own summary lines (Node's spec reporter), read after ANSI colours are stripped.
const SUMMARIES: Record<"bun" | "node", Record<"passed" | "failed" | "skipped", RegExp>> = {
  bun: { passed: /^\s*(\d+) pass$/m, failed: /^\s*(\d+) fail$/m, skipped: /^\s*(\d+) skip$/m },
  node: { passed: /^ℹ pass (\d+)$/m, failed: /^ℹ fail (\d+)$/m, skipped: /^ℹ skipped (\d+)$/m },
};

function summaryCounts(kind: "bun" | "node", text: string): Counts | undefined {
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "").replace(/\r\n/g, "\n");
  const read = (pattern: RegExp) => pattern.exec(plain)?.[1];
  const [passed, failed, skipped] = [
    read(SUMMARIES[kind].passed),
    read(SUMMARIES[kind].failed),
    read(SUMMARIES[kind].skipped),
  ];
  if (passed === undefined || failed === undefined) return undefined;
  // Node counts cancelled tests apart from failed ones: they did not pass either.
  const cancelled = kind === "node" ? Number(/^ℹ cancelled (\d+)$/m.exec(plain)?.[1] ?? 0) : 0;
  return {
    passed: Number(passed),
    failed: Number(failed) + cancelled,
    skipped: Number(skipped ?? 0),
    names: failedNames(kind, plain),
  };
}

/**
 * The failed test cases a run's plain output names: Bun's "(fail) suite > name" lines, and the
 * "✖ name" lines of the list Node's spec reporter prints after "✖ failing tests:".
 */
function failedNames(kind: "bun" | "node", plain: string): string[] {
  if (kind === "bun") return [...plain.matchAll(/^\(fail\) (.+?)(?: \[[\d.]+m?s\])?$/gm)].map(([, name]) => name!);
  const list = plain.indexOf("✖ failing tests:");
  if (list < 0) return [];
  return [...plain.slice(list).matchAll(/^(?:test at (\S+)\n)?✖ (.+?)(?: \([\d.]+m?s\))?$/gm)]
    .filter(([, , name]) => name !== "failing tests:")
    .map(([, where, name]) => where ? `${name} (${where})` : name!);
}

function unescapeXml(text: string): string {
  return text.replace(
    /&(lt|gt|quot|apos|amp);/g,
    (_, name: string) => ({ lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" })[name]!,
  );
}

/**
 * Test cases in Deno's JUnit report: every test case that has no step of its own (a step is
 * named `<parent> > <step>`), plus any failed parent none of whose steps failed (a failing hook).
 */
function junitCounts(xml: string): Counts {
  const cases = [...xml.matchAll(/<testcase\s+name="([^"]*)"([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)].map((
    [, name, attributes = "", body = ""],
  ) => ({
    name: unescapeXml(name!),
    file: unescapeXml(/\bclassname="([^"]*)"/.exec(attributes)?.[1] ?? ""),
    failed: /<(failure|error)\b/.test(body),
    skipped: /<skipped\b/.test(body),
  }));
  const counts: Counts = { passed: 0, failed: 0, skipped: 0, names: [] };
  const fail = (name: string) => {
    // A step's own classname is Deno's node:test shim; the file is its top-level test's.
    const file = cases.find((other) => other.name === name.split(" > ")[0])?.file ?? "";
    counts.failed++;
    counts.names.push(`${name} (${file})`);
  };
  for (const each of cases) {
    const steps = cases.filter((other) => other.name.startsWith(`${each.name} > `));
    if (steps.length > 0) {
      if (each.failed && !steps.some((step) => step.failed)) fail(each.name);
      continue;
    }
    if (each.failed) fail(each.name);
    else if (each.skipped) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

async function run(
  label: string,
  command: string,
  args: string[],
  count: (text: string) => Promise<Counts | undefined>,
  env: Record<string, string> = {},
): Promise<Counts & { ok: boolean }> {
  console.log(`\n# ${label}: ${command} ${args.join(" ")}`);
  const child = new Deno.Command(command, {
    args,
    cwd: rootPath,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>, sink: { write(data: Uint8Array): Promise<number> }) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      await sink.write(chunk);
    }
  };
  const [status] = await Promise.all([child.status, pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  const found = await count(text);
  if (!found) console.log(`# ${label}: no test summary found in the output`);
  const result = found ?? { passed: 0, failed: 1, skipped: 0, names: [] };
  return { ...result, ok: status.success && found !== undefined && found.failed === 0 && found.passed > 0 };
}

/** Deno's JUnit report of the last run: in the repository's gitignored `.runtimes/`, so a Ctrl+C leaves nothing in /tmp. */
const JUNIT = `${runtimesPath}/deno-junit.xml`;

async function runDeno(): Promise<Counts & { ok: boolean }> {
  await Deno.mkdir(runtimesPath, { recursive: true });
  await Deno.remove(JUNIT).catch(() => {});
  const args = [
    "test",
    "--allow-env",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-sys",
    "--allow-run",
    `--junit-path=${JUNIT}`,
    "--doc",
    "tests/",
    // Deno only: the Azure SDK interop test imports npm: packages.
    "tests/interop/azure_sdk.deno.ts",
    "tests/interop/chain.deno.ts",
    "tests/interop/jwks.deno.ts",
    "tests/interop/workload_identity.deno.ts",
    "mod.ts",
    "src/",
  ];
  return await run("deno", Deno.execPath(), args, async (text) => {
    const xml = await Deno.readTextFile(JUNIT).catch(() => "");
    // The run's own summary line ("154 passed (1090 steps) | 0 failed") must be there too.
    // deno-lint-ignore no-control-regex
    const summary = /\|\s*\d+ passed(?: \(\d+ steps?\))?\s*\|\s*(\d+) failed/.exec(text.replace(/\x1b\[[0-9;]*m/g, ""));
    if (!xml.includes("<testsuites") || !summary) return undefined;
    const counts = junitCounts(xml);
    // A failure the report has no test case for (an uncaught error in a file) still fails the run.
    return Number(summary[1]) > 0 && counts.failed === 0 ? { ...counts, failed: Number(summary[1]) } : counts;
  });
}

const RUNTIMES = ["deno", "bun", "node", "node22"];
const wanted = Deno.args.length > 0 ? Deno.args : RUNTIMES;
for (const runtime of wanted) {
  if (!RUNTIMES.includes(runtime)) {
    console.error(`Unknown runtime "${runtime}": expected ${RUNTIMES.join(", ")}`);
    Deno.exit(2);
  }
}
const nodeArgs = ["--test", "--test-reporter=spec", "tests/**/*_test.ts"];
const results: [string, Counts & { ok: boolean }][] = [];
for (const runtime of wanted) {
  if (runtime === "deno") {
    results.push([runtime, await runDeno()]);
  } else if (runtime === "bun") {
    const bun = await locate("bun", 1);
    results.push([
      runtime,
      await run(runtime, bun, ["test", "tests/"], (text) => Promise.resolve(summaryCounts("bun", text))),
    ]);
  } else if (runtime === "node") {
    const node = await locate("node", 24);
    results.push([runtime, await run(runtime, node, nodeArgs, (text) => Promise.resolve(summaryCounts("node", text)))]);
  } else {
    const { command, version } = await locateNode22();
    const setup = node22Setup(version);
    results.push([
      runtime,
      await run(
        `node ${version.join(".")}`,
        command,
        [...setup.args, ...nodeArgs],
        (text) => Promise.resolve(summaryCounts("node", text)),
        setup.env,
      ),
    ]);
  }
}

// Node 24 and Node 22 run the same files with the same runner: a different number of test cases
// means that some did not run on one of them (as with Node 22's --test-force-exit, silently).
const ofRuntime = (name: string) => results.find(([runtime]) => runtime === name)?.[1];
const [node24, node22] = [ofRuntime("node"), ofRuntime("node22")];
const cases = (result: Counts) => result.passed + result.failed + result.skipped;
if (node24 && node22 && cases(node24) !== cases(node22)) {
  console.log(`\n# node22 ran ${cases(node22)} test cases and node ${cases(node24)}, from the same files`);
  // The test cases one of them did not run count as failed there.
  const short = cases(node22) < cases(node24) ? node22 : node24;
  short.failed += Math.abs(cases(node24) - cases(node22));
  short.ok = false;
}

console.log("\n# test cases per runtime (a describe block is not one; Deno's doc tests and Deno-only files are)");
for (const [runtime, result] of results) {
  const skipped = result.skipped > 0 ? `, ${result.skipped} skipped` : "";
  console.log(
    `# ${runtime.padEnd(6)} ${result.ok ? "ok  " : "FAIL"} ${result.passed} passed, ${result.failed} failed${skipped}`,
  );
}
// Last, so that the tail of a long log (all a CI record may keep) says which tests failed.
for (const [runtime, result] of results) {
  for (const name of result.names) console.log(`# ${runtime.padEnd(6)} failed: ${name}`);
}
const passed = results.reduce((sum, [, r]) => sum + r.passed, 0);
const failed = results.reduce((sum, [, r]) => sum + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(results.every(([, r]) => r.ok) ? 0 : 1);
