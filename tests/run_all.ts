/**
 * `deno task test`: runs the whole suite on Deno, Bun and Node 24, one after the other, and
 * fails when any runtime fails. Bun 1 and Node 24 are taken from PATH when they are there in
 * those versions, else installed from the npm registry into `.runtimes/` (through Deno's own
 * npm support, so a machine with nothing but Deno works).
 *
 * Usage: deno task test [deno|bun|node ...]
 */

const root = new URL("../", import.meta.url);
const rootPath = decodeURIComponent(root.pathname);
const localBin = `${rootPath}.runtimes/node_modules/.bin`;

async function output(command: string, args: string[]): Promise<string | undefined> {
  try {
    const { success, stdout } = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" }).output();
    return success ? new TextDecoder().decode(stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

async function suitable(command: string, major: number): Promise<boolean> {
  const version = await output(command, ["--version"]);
  return version !== undefined && Number(/(\d+)\./.exec(version)?.[1]) === major;
}

/** The command for a runtime: from PATH when it is the right major version, else from .runtimes. */
async function locate(name: "bun" | "node", major: number): Promise<string> {
  if (await suitable(name, major)) return name;
  const local = `${localBin}/${name}`;
  if (await suitable(local, major)) return local;
  console.log(`# ${name} ${major} is not on PATH: installing it into .runtimes/ from the npm registry`);
  const install = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "npm:npm@11",
      "install",
      "--prefix",
      `${rootPath}.runtimes`,
      "--no-save",
      "--no-audit",
      "--no-fund",
      "bun@1",
      "node@24",
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!install.success || !(await suitable(local, major))) {
    throw new Error(`Cannot install ${name} ${major}: install it and put it on PATH`);
  }
  return local;
}

interface Counts {
  passed: number;
  failed: number;
}

// Each runner's own summary line, read after ANSI colours are stripped.
const SUMMARIES: Record<string, RegExp[]> = {
  deno: [/\|\s*(\d+) passed(?: \(\d+ steps?\))?\s*\|\s*(\d+) failed/],
  bun: [/^\s*(\d+) pass$/m, /^\s*(\d+) fail$/m],
  node: [/^ℹ pass (\d+)$/m, /^ℹ fail (\d+)$/m],
};

function counts(runtime: string, text: string): Counts | undefined {
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  const patterns = SUMMARIES[runtime]!;
  if (patterns.length === 1) {
    const match = patterns[0]!.exec(plain);
    return match ? { passed: Number(match[1]), failed: Number(match[2]) } : undefined;
  }
  const [pass, fail] = patterns.map((pattern) => pattern.exec(plain)?.[1]);
  return pass === undefined || fail === undefined ? undefined : { passed: Number(pass), failed: Number(fail) };
}

async function run(runtime: string, command: string, args: string[]): Promise<Counts & { ok: boolean }> {
  console.log(`\n# ${runtime}: ${command} ${args.join(" ")}`);
  const child = new Deno.Command(command, {
    args,
    cwd: rootPath,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
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
  const found = counts(runtime, text);
  if (!found) console.log(`# ${runtime}: no test summary found in the output`);
  const result = found ?? { passed: 0, failed: 1 };
  return { ...result, ok: status.success && found !== undefined && found.failed === 0 && found.passed > 0 };
}

const wanted = Deno.args.length > 0 ? Deno.args : ["deno", "bun", "node"];
const results: [string, Counts & { ok: boolean }][] = [];
for (const runtime of wanted) {
  if (runtime === "deno") {
    results.push([
      runtime,
      await run(runtime, Deno.execPath(), [
        "test",
        "--allow-env",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-sys",
        "--allow-run",
        "--doc",
        "tests/",
        // Deno only: the Azure SDK interop test imports npm: packages.
        "tests/interop/azure_sdk.deno.ts",
        "tests/interop/chain.deno.ts",
        "tests/interop/jwks.deno.ts",
        "tests/interop/workload_identity.deno.ts",
        "mod.ts",
        "src/",
      ]),
    ]);
  } else if (runtime === "bun") {
    results.push([runtime, await run(runtime, await locate("bun", 1), ["test", "tests/"])]);
  } else if (runtime === "node") {
    results.push([runtime, await run(runtime, await locate("node", 24), ["--test", "tests/**/*_test.ts"])]);
  } else {
    console.error(`Unknown runtime "${runtime}": expected deno, bun or node`);
    Deno.exit(2);
  }
}

console.log("");
for (const [runtime, result] of results) {
  console.log(`# ${runtime.padEnd(5)} ${result.ok ? "ok  " : "FAIL"} ${result.passed} passed, ${result.failed} failed`);
}
const passed = results.reduce((sum, [, r]) => sum + r.passed, 0);
const failed = results.reduce((sum, [, r]) => sum + r.failed, 0);
console.log(`total: ${passed} passed, ${failed} failed`);
Deno.exit(results.every(([, r]) => r.ok) ? 0 : 1);
