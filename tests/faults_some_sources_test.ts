/**
 * The faults that only some sources have, against the real loopback servers of the fault matrix
 * (tests/faults_test.ts, rig in tests/helpers/fault_rig.ts): Docker Desktop's 403 on IMDS, Azure
 * Arc's challenge never retried and its key sent on every retry, and Cloud Shell's and workload
 * identity's token requests sent again the same on every retry, the token file read once.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { answer, type FaultHandler } from "./helpers/faults.ts";
import {
  ARC_KEY,
  fails,
  FEDERATED_TOKEN,
  SOURCES,
  status,
  succeeds,
  thenToken,
  VAULT,
  withRig,
} from "./helpers/fault_rig.ts";

const DOCKER_DESKTOP = "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp " +
  "169.254.169.254:80: connectex: A socket operation was attempted to an unreachable network.";

describe("faults only some sources have", () => {
  const imds = SOURCES.find((kase) => kase.source === "DefaultToIMDS")!;
  const arc = SOURCES.find((kase) => kase.source === "AzureArc")!;
  const cloudShell = SOURCES.find((kase) => kase.source === "CloudShell")!;
  const workload = SOURCES.find((kase) => kase.source === "WorkloadIdentity")!;

  test('acquireToken() reads Docker Desktop\'s 403 "unreachable network" as "unavailable" on IMDS', async () => {
    const docker: FaultHandler = (_request, socket) =>
      answer(socket, 403, DOCKER_DESKTOP, { "content-type": "text/plain; charset=utf-8" });
    await withRig(imds, docker, async (rig) => {
      const error = await fails(rig.client.acquireToken(VAULT), "unavailable", 403);
      assert.equal(error.source, "DefaultToIMDS");
      assert.equal(rig.tokenRequests().length, 1);
      assert.deepEqual(rig.time.sleeps, []);
    });
  });

  test("acquireToken() never retries Azure Arc's challenge request: a 500 on it fails after 1 request", async () => {
    await withRig(arc, status(500), async (rig) => {
      const error = await fails(rig.client.acquireToken(VAULT), "request_failed", 500);
      assert.match(error.message, /401 challenge/);
      assert.equal(rig.server.requests.length, 1);
      assert.equal(rig.server.requests[0]!.headers.authorization, undefined);
      assert.deepEqual(rig.time.sleeps, []);
    }, { faultOnChallenge: true });
  });

  test("acquireToken() sends the Azure Arc key on every retry of the second request", async () => {
    await withRig(arc, thenToken(status(503), 2), async (rig) => {
      await succeeds(rig.client.acquireToken(VAULT));
      assert.equal(rig.challenges().length, 1);
      assert.deepEqual(rig.tokenRequests().map((request) => request.headers.authorization), [
        `Basic ${ARC_KEY}`,
        `Basic ${ARC_KEY}`,
        `Basic ${ARC_KEY}`,
      ]);
    });
  });

  test("acquireToken() sends the same resource= body on every Cloud Shell retry", async () => {
    await withRig(cloudShell, thenToken(status(503), 2), async (rig) => {
      await succeeds(rig.client.acquireToken(VAULT));
      const requests = rig.server.requests;
      assert.equal(requests.length, 3);
      for (const request of requests) {
        assert.equal(request.method, "POST");
        assert.equal(request.headers["content-type"], "application/x-www-form-urlencoded");
        assert.equal(request.body, "resource=https%3A%2F%2Fvault.azure.net");
      }
    });
  });

  test("acquireToken() sends the same token request, assertion included, on every Workload Identity retry", async () => {
    await withRig(workload, thenToken(status(503), 2), async (rig) => {
      await succeeds(rig.client.acquireToken(VAULT));
      const requests = rig.server.requests;
      assert.equal(requests.length, 3);
      for (const request of requests) {
        assert.equal(request.method, "POST");
        assert.equal(request.path, "/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token");
        assert.equal(request.headers["content-type"], "application/x-www-form-urlencoded");
        assert.deepEqual([...new URLSearchParams(request.body)], [
          ["client_id", "11111111-2222-3333-4444-555555555555"],
          ["scope", "https://vault.azure.net/.default"],
          ["grant_type", "client_credentials"],
          ["client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
          ["client_assertion", FEDERATED_TOKEN],
        ]);
      }
    });
  });

  test("acquireToken() reads the Workload Identity token file once for all the retries of a request", async () => {
    const opened: string[] = [];
    const tokenFileSystem = {
      open: (path: string, flags: number) => {
        opened.push(path);
        return fsp.open(path, flags);
      },
    };
    await withRig(workload, thenToken(status(500), 3), async (rig) => {
      await succeeds(rig.client.acquireToken(VAULT));
      assert.equal(rig.tokenRequests().length, 4);
      assert.equal(opened.length, 1);
    }, { internal: { tokenFileSystem } });
  });
});
