/**
 * Certificates for `deno task interop` (run.ts): the emulator's development CA and server
 * certificate, wherever dev_cert.ts has them, written to files for the children, this runner's
 * TLS servers and Azurite.
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import * as devCertificates from "../../src/emulator/dev_cert.ts";
import type { TlsFiles } from "./local_servers.ts";
import { run } from "./setup.ts";

/** A run's certificates: files for the children and servers, PEMs for this process. */
export interface Certificates {
  /** PEM file of the certificates a client must trust (NODE_EXTRA_CA_CERTS, DENO_CERT). */
  readonly caFile: string;
  readonly caPems: readonly string[];
  /** Chain and key for this runner's TLS servers and Azurite. */
  readonly tls: TlsFiles;
  readonly certFile: string;
  readonly keyFile: string;
  /** Whether the server certificate is a CA (rustls, so Deno, refuses it as a server's). */
  readonly serverIsCa: boolean;
  readonly description: string;
}

/**
 * Reads the emulator's development certificates: every PEM certificate and key dev_cert.ts
 * exports (by content, not by name). The trust anchors are the CA certificates; the server
 * certificate is the one that is not a CA and matches an exported key. Without one (a single
 * self-signed CA:TRUE certificate, which Deno refuses as a server's), this runner's own servers
 * and Azurite use a throwaway CA and server certificate made with openssl, trusted beside the
 * emulator's.
 */
export async function certificates(directory: string): Promise<Certificates> {
  const pems = Object.values(devCertificates as Record<string, unknown>).filter((v): v is string =>
    typeof v === "string"
  );
  const certs = pems.filter((pem) => pem.includes("-----BEGIN CERTIFICATE-----")).map((pem) => ({
    pem: pem.trim() + "\n",
    x509: new X509Certificate(pem),
  }));
  const keys = pems.filter((pem) => /-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(pem));
  const cas = certs.filter((cert) => cert.x509.ca);
  const anchors = (cas.length > 0 ? cas : certs).map((cert) => cert.pem);
  let server: { chain: string; key: string } | undefined;
  for (const cert of certs) {
    const key = keys.find((pem) => cert.x509.checkPrivateKey(createPrivateKey(pem)));
    if (key && !cert.x509.ca) server = { chain: cert.pem + cas.map((ca) => ca.pem).join(""), key };
  }
  let description = server
    ? `the emulator's development server certificate (${
      certs.find((c) => !c.x509.ca)?.x509.subject.replace(/\s+/g, " ")
    }), trusted through its CA`
    : "";
  if (!server) {
    // A throwaway CA and a server certificate it signs, for this run only: a self-signed server
    // certificate will not do, Deno's node:https refuses one (DEPTH_ZERO_SELF_SIGNED_CERT) even
    // when DENO_CERT names it, and its fetch refuses a CA:TRUE one.
    const file = (name: string) => `${directory}/throwaway-${name}`;
    const openssl = (flags: string, ...args: string[]) => run("openssl", [...flags.split(" "), ...args], 60_000);
    await openssl(
      "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=azmi-interop-CA -keyout",
      file("ca-key.pem"),
      "-out",
      file("ca.pem"),
    );
    await openssl(
      "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout",
      file("key.pem"),
      "-out",
      file("request.pem"),
    );
    const extensions = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n";
    await Deno.writeTextFile(file("extensions.cnf"), extensions);
    const serial = `0x${crypto.randomUUID().replace(/-/g, "")}`;
    await openssl(
      `x509 -req -days 2 -set_serial ${serial} -in`,
      file("request.pem"),
      "-CA",
      file("ca.pem"),
      "-CAkey",
      file("ca-key.pem"),
      "-extfile",
      file("extensions.cnf"),
      "-out",
      file("cert.pem"),
    );
    const ca = await Deno.readTextFile(file("ca.pem"));
    server = { chain: await Deno.readTextFile(file("cert.pem")) + ca, key: await Deno.readTextFile(file("key.pem")) };
    anchors.push(ca);
    description = "a throwaway CA and server certificate made with openssl (dev_cert.ts has no CA:FALSE server " +
      "certificate with its key)";
  }
  const caFile = `${directory}/trusted.pem`;
  const certFile = `${directory}/server-chain.pem`;
  const keyFile = `${directory}/server-key.pem`;
  await Deno.writeTextFile(caFile, anchors.join(""));
  await Deno.writeTextFile(certFile, server.chain);
  await Deno.writeTextFile(keyFile, server.key, { mode: 0o600 });
  return {
    caFile,
    caPems: anchors,
    tls: { cert: server.chain, key: server.key },
    certFile,
    keyFile,
    serverIsCa: certs.length > 0 && certs.every((cert) => cert.x509.ca),
    description,
  };
}
