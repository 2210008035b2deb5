/**
 * Run by tests/permission_test.ts in a Deno process given no permissions (or only
 * `--allow-read` for the token file): acquires a token in each scenario and prints one JSON line
 * per scenario with what came back. Never run as a test file itself.
 *
 *   deno run --no-prompt --quiet tests/helpers/refusal_child.ts '{"port":1234,"dir":"/tmp/x",...,"scenarios":["imds"]}'
 */

import { connect } from "node:net";
import { ManagedIdentityError, type ManagedIdentityEvent } from "../../mod.ts";
import { main } from "../../src/cli.ts";
import { testClient } from "./fake.ts";

const VAULT = "https://vault.azure.net";

interface Plan {
  readonly port: number;
  /** Arc's token directory, holding `keyFile`. */
  readonly dir: string;
  readonly keyFile: string;
  readonly tokenFile: string;
  readonly scenarios: readonly string[];
}

/** What one scenario ended with. */
export interface Outcome {
  readonly scenario: string;
  readonly code?: string;
  readonly name?: string;
  readonly message?: string;
  /** Calls of the `fetch` option (0 where the scenario gives none). */
  readonly attempts: number;
  /** `retry` events. */
  readonly retries: number;
  /** A second call's code, where the scenario makes one. */
  readonly again?: string;
}

const { Deno } = globalThis as unknown as { Deno: { args: string[]; build: { os: string } } };
const plan = JSON.parse(Deno.args[0]!) as Plan;
const loopback = `http://127.0.0.1:${plan.port}`;

/** A `fetch` over node:net that only connects: rejects with whatever node:net reports. */
function netFetch(request: Request): Promise<Response> {
  const url = new URL(request.url);
  return new Promise((_resolve, reject) => {
    const socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port) });
    socket.on("error", reject);
    socket.on("connect", () => {
      socket.destroy();
      reject(new Error("connected: this process was expected to have no --allow-net"));
    });
  });
}

async function run(scenario: string): Promise<Outcome> {
  const events: ManagedIdentityEvent[] = [];
  const onEvent = (event: ManagedIdentityEvent) => events.push(event);
  let attempts = 0;
  const counted = (inner: (request: Request) => Promise<Response>) => (request: Request) => {
    attempts++;
    return inner(request);
  };
  let call: () => Promise<unknown>;
  let again: (() => Promise<unknown>) | undefined;
  const appService = (origin: string) => ({ IDENTITY_ENDPOINT: `${origin}/msi/token`, IDENTITY_HEADER: "h" });
  switch (scenario) {
    case "app-service": {
      // The client's own transport, whatever it is.
      const client = testClient({ env: appService(loopback), onEvent });
      call = () => client.acquireToken(VAULT);
      break;
    }
    case "imds": {
      // The first-contact probe goes first; a second call must not find IMDS "absent".
      const client = testClient({ env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: loopback }, imdsProbe: true, onEvent });
      call = () => client.acquireToken(VAULT);
      again = () => client.acquireToken(VAULT);
      break;
    }
    case "fetch": {
      const client = testClient({ env: appService(loopback), fetch: counted((r) => fetch(r)), onEvent });
      call = () => client.acquireToken(VAULT);
      break;
    }
    case "net": {
      const client = testClient({ env: appService(loopback), fetch: counted(netFetch), onEvent });
      call = () => client.acquireToken(VAULT);
      break;
    }
    case "net-localhost": {
      const client = testClient({
        env: appService(`http://localhost:${plan.port}`),
        fetch: counted(netFetch),
        onEvent,
      });
      call = () => client.acquireToken(VAULT);
      break;
    }
    case "arc-key": {
      const agent = () =>
        Promise.resolve(
          new Response(null, { status: 401, headers: { "www-authenticate": `Basic realm=${plan.keyFile}` } }),
        );
      const client = testClient(
        {
          env: { IDENTITY_ENDPOINT: `${loopback}/metadata/identity/oauth2/token`, IMDS_ENDPOINT: loopback },
          fetch: counted(agent),
          onEvent,
        },
        { arcTokenDirectory: plan.dir, platform: Deno.build.os === "windows" ? "win32" : "linux" },
      );
      call = () => client.acquireToken(VAULT);
      break;
    }
    case "token-file":
    case "entra": {
      const client = testClient({
        env: {
          AZURE_FEDERATED_TOKEN_FILE: plan.tokenFile,
          AZURE_TENANT_ID: "tenant",
          AZURE_CLIENT_ID: "11111111-2222-3333-4444-555555555555",
          AZURE_AUTHORITY_HOST: loopback,
        },
        onEvent,
      });
      call = () => client.acquireToken(VAULT);
      break;
    }
    case "doctor": {
      // azmi doctor's reachability check, sent the way the client sends (no fetch option): its
      // exit code as `code`, its output as `message`.
      let out = "";
      const io = {
        env: appService(loopback),
        stdout: (text: string) => out += text,
        stderr: (text: string) => out += text,
      };
      const code = await main(["doctor"], io);
      return { scenario, code: String(code), message: out, attempts: 0, retries: 0 };
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
  const settle = async (run: () => Promise<unknown>) => {
    try {
      await run();
      return { code: "success" };
    } catch (error) {
      if (!(error instanceof ManagedIdentityError)) {
        return { code: "not-a-ManagedIdentityError", message: String(error) };
      }
      return { code: error.code, name: error.name, message: error.message };
    }
  };
  const first = await settle(call);
  const second = again ? (await settle(again)).code : undefined;
  const retries = events.filter((event) => event.type === "retry").length;
  return { scenario, ...first, attempts, retries, ...(second === undefined ? {} : { again: second }) };
}

for (const scenario of plan.scenarios) console.log(JSON.stringify(await run(scenario)));
