/**
 * Every link in the README and in `docs/` resolves on JSR and on the repository host (issue 19).
 *
 * JSR shows the published files only (`publish.include` in deno.json), so a relative link must
 * point at a published file that exists, and its `#anchor` at a heading of that page. A file
 * outside that set (`tests/`, `bench/`, `examples/`) is linked absolutely, into the repository,
 * and must exist here too.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The repository, named once in the README; absolute links to unpublished files start with it. */
const REPOSITORY = "https://github.com/azmi-js/managed-identity";

/** The pages whose links are checked, relative to the root. */
const PAGES = [
  "README.md",
  ...readdirSync(join(ROOT, "docs")).filter((name) => name.endsWith(".md")).sort().map((name) => `docs/${name}`),
];

/** What JSR publishes: deno.json's `publish.include`, files and folders (ending in `/`). */
const PUBLISHED: readonly string[] =
  (JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as { publish: { include: string[] } }).publish.include;

const isPublished = (path: string) =>
  PUBLISHED.some((entry) => entry.endsWith("/") ? `${path}/`.startsWith(entry) : path === entry);

/** A page's text without fenced code blocks and code spans, where brackets are not links. */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "").replace(/`[^`\n]*`/g, "");
}

/** The targets of a page's inline links, `[text](target)`. */
function links(text: string): string[] {
  return [...prose(text).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((match) => match[1]!);
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors of a page's headings, repeated ones numbered as GitHub numbers them. */
function anchors(page: string): Set<string> {
  const text = readFileSync(join(ROOT, page), "utf8").replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const match of text.matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = slug(match[1]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  return found;
}

/** Why a link does not resolve, or undefined when it does. */
function problem(page: string, target: string): string | undefined {
  if (target.startsWith(`${REPOSITORY}/`)) {
    const path = /^\/(?:blob|tree)\/main\/([^#?]+)/.exec(target.slice(REPOSITORY.length))?.[1];
    if (path === undefined) return undefined; // issues, the repository's pages
    return existsSync(join(ROOT, path)) ? undefined : `${path} does not exist`;
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // another site, mailto:
  const [file = "", anchor] = target.split("#", 2);
  const path = file === "" ? page : normalize(join(dirname(page), decodeURI(file))).replace(/\\/g, "/");
  if (path.startsWith("..") || relative(ROOT, join(ROOT, path)).startsWith("..")) return "outside the repository";
  if (!isPublished(path)) return `${path} is not published on JSR: link it as ${REPOSITORY}/blob/main/${path}`;
  if (!existsSync(join(ROOT, path))) return `${path} does not exist`;
  if (anchor !== undefined && path.endsWith(".md") && !anchors(path).has(anchor)) {
    return `${path} has no heading #${anchor}`;
  }
  return undefined;
}

describe("links in the README and docs/", () => {
  test("the README names the repository", () => {
    assert.ok(readFileSync(join(ROOT, "README.md"), "utf8").includes(REPOSITORY), REPOSITORY);
  });

  for (const page of PAGES) {
    test(`every link in ${page} resolves on JSR and on the repository host`, () => {
      const targets = links(readFileSync(join(ROOT, page), "utf8"));
      const broken = targets.flatMap((target) => {
        const why = problem(page, target);
        return why === undefined ? [] : [`${target}: ${why}`];
      });
      assert.deepEqual(broken, [], `${page}:\n${broken.join("\n")}`);
    });
  }

  test("docs/development.md's map of the tests names every test file in tests/, and none that is gone", () => {
    const text = readFileSync(join(ROOT, "docs/development.md"), "utf8");
    const start = text.indexOf("## Where the tests are");
    assert.ok(start >= 0, "docs/development.md has no map of the tests");
    const named = new Set([...text.slice(start).matchAll(/`((?:interop\/|sources\/)?\w+\.ts)`/g)].map((m) => m[1]!));
    const present = readdirSync(join(ROOT, "tests")).filter((name) => name.endsWith("_test.ts"));
    for (const file of present) assert.ok(named.has(file), `tests/${file} is not in docs/development.md's map`);
    for (const file of named) assert.ok(existsSync(join(ROOT, "tests", file)), `tests/${file} is in the map but gone`);
    assert.ok(named.size > present.length, "the map names the interop and sources files too");
  });

  test("the checks themselves: a link to tests/, a missing file and a missing heading are refused", () => {
    assert.match(problem("README.md", "tests/exit_test.ts") ?? "", /not published/);
    assert.match(problem("docs/cli.md", "../bench/report.ts") ?? "", /not published/);
    assert.match(problem("README.md", "docs/nothing.md") ?? "", /does not exist/);
    assert.match(problem("README.md", "docs/emulator.md#no-such-heading") ?? "", /no heading/);
    assert.match(problem("README.md", `${REPOSITORY}/blob/main/tests/nothing_test.ts`) ?? "", /does not exist/);
    assert.equal(problem("README.md", "docs/emulator.md#rehearse-failures"), undefined);
    assert.equal(problem("docs/sources.md", "#service-fabric-servicefabric"), undefined);
    assert.equal(problem("README.md", "https://jsr.io/@azmi/managed-identity"), undefined);
    assert.equal(slug("Service Fabric (`ServiceFabric`)"), "service-fabric-servicefabric");
    assert.equal(slug("`AZURE_CLIENT_ID`"), "azure_client_id");
  });
});
