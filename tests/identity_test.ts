import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type IdentityOptions, parseIdentity } from "../src/identity.ts";

describe("parseIdentity()", () => {
  test("parseIdentity() returns the system-assigned identity when no ID is given", () => {
    assert.deepEqual(parseIdentity({}), { kind: "system" });
  });

  test("parseIdentity() treats an undefined ID as not given", () => {
    assert.deepEqual(parseIdentity({ clientId: undefined, objectId: undefined } as unknown as IdentityOptions), {
      kind: "system",
    });
    assert.deepEqual(parseIdentity({ clientId: undefined, objectId: "oid" } as unknown as IdentityOptions), {
      kind: "objectId",
      value: "oid",
    });
  });

  test("parseIdentity() ignores options that are not identities", () => {
    const options = { env: { IDENTITY_ENDPOINT: "x" }, timeoutMs: 5, clientId: "cid" } as IdentityOptions;
    assert.deepEqual(parseIdentity(options), { kind: "clientId", value: "cid" });
  });

  test("parseIdentity() returns a client ID identity", () => {
    assert.deepEqual(parseIdentity({ clientId: "11111111-2222-3333-4444-555555555555" }), {
      kind: "clientId",
      value: "11111111-2222-3333-4444-555555555555",
    });
  });

  test("parseIdentity() returns an object ID identity", () => {
    assert.deepEqual(parseIdentity({ objectId: "99999999-8888-7777-6666-555555555555" }), {
      kind: "objectId",
      value: "99999999-8888-7777-6666-555555555555",
    });
  });

  test("parseIdentity() returns a resource ID identity", () => {
    const resourceId =
      "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
    assert.deepEqual(parseIdentity({ resourceId }), { kind: "resourceId", value: resourceId });
  });

  test("parseIdentity() trims the ID", () => {
    assert.deepEqual(parseIdentity({ clientId: "  cid \n" }), { kind: "clientId", value: "cid" });
  });

  test("parseIdentity() throws TypeError naming both kinds for two IDs", () => {
    assert.throws(() => parseIdentity({ clientId: "a", resourceId: "/r" }), {
      name: "TypeError",
      message: "Cannot use more than one of clientId, objectId and resourceId: got clientId and resourceId",
    });
  });

  test("parseIdentity() throws TypeError for three IDs", () => {
    assert.throws(() => parseIdentity({ clientId: "a", objectId: "b", resourceId: "/r" }), {
      name: "TypeError",
      message:
        "Cannot use more than one of clientId, objectId and resourceId: got clientId and objectId and resourceId",
    });
  });

  test("parseIdentity() throws TypeError for two IDs when one is empty", () => {
    assert.throws(() => parseIdentity({ clientId: "a", objectId: "" }), TypeError);
  });

  test("parseIdentity() throws TypeError naming the option for an empty ID", () => {
    assert.throws(() => parseIdentity({ clientId: "" }), {
      name: "TypeError",
      message: 'Option "clientId" must be a non-empty string: got ""',
    });
  });

  test("parseIdentity() throws TypeError for a whitespace-only ID", () => {
    assert.throws(() => parseIdentity({ objectId: " \t\n" }), {
      name: "TypeError",
      message: 'Option "objectId" must be a non-empty string: got " \\t\\n"',
    });
  });

  test("parseIdentity() throws TypeError for an ID that is not a string", () => {
    assert.throws(() => parseIdentity({ resourceId: 42 } as unknown as IdentityOptions), {
      name: "TypeError",
      message: 'Option "resourceId" must be a non-empty string: got 42',
    });
    assert.throws(() => parseIdentity({ clientId: null } as unknown as IdentityOptions), TypeError);
  });
});
