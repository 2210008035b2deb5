/**
 * The help texts: `azmi --help` and each command's `--help`.
 * @module
 */

import { ARC_LINUX_TOKEN_DIRECTORY } from "../arc_key.ts";
import { ALL_SOURCES } from "../emulator/mod.ts";

/** `azmi --help`: the commands and the exit codes. */
export const USAGE: string = `azmi: Azure managed identity tokens from the command line (Deno, Bun and Node)

Usage: azmi <command> [options]

Commands:
  token <resource>    print an access token for a resource, for $(azmi token ...); with the flags
                      of az account get-access-token, what az prints (-o json, tsv, yaml, table)
  detect              tell which managed identity source this environment has, and why
  doctor [resource]   explain step by step whether a token can be had here, and what to do if not
  emulate             run local stand-ins of the managed identity endpoints, for trying things off Azure
  help [command]      show this text, or a command's

Run "azmi <command> --help" for a command's options, "azmi --version" (or -V) for the version.

Exit codes:
  0  success
  1  the token request failed (request_failed, invalid_response, identity_mismatch, Azure Arc key errors),
     or the emulator could not start
  2  usage error: unknown command or flag, missing or bad value
  3  no managed identity is reachable here (unavailable)
  4  the endpoint did not answer in time (timeout)
  5  configuration error (invalid_configuration, unsupported_identity, certificate_mismatch)
`;

/** The identity flags, as `token` and `doctor` list them. */
const IDENTITY_HELP = `  --client-id ID      a user-assigned identity by client (application) ID
  --object-id ID      a user-assigned identity by object (principal) ID
  --resource-id ID    a user-assigned identity by Azure resource ID
                      (at most one of these; without any, the system-assigned identity)`;

/** `azmi token --help`. */
export const TOKEN_HELP: string =
  `Usage: azmi token <resource> [--client-id ID | --object-id ID | --resource-id ID] [--timeout MS]
       azmi token [--resource URI | --scope SCOPE | --resource-type TYPE] [--subscription ID]
                  [--query JMESPATH] [-o FORMAT] [identity flag] [--timeout MS]

Prints an access token for <resource> (such as https://vault.azure.net; a trailing /.default
is removed) and nothing else, so that a script can write:

  curl -H "Authorization: Bearer $(azmi token https://vault.azure.net)" ...

It also takes every flag of "az account get-access-token" and prints what az prints, so that a
script written for az runs unchanged on a managed identity, without az or "az login --identity":

  token=$(azmi token --resource https://vault.azure.net --query accessToken -o tsv)

The resource, given once: the argument, or az's flags (as az: --scope over --resource over
--resource-type); with none of them, az's default, https://management.core.windows.net/ (ARM):
  --resource URI      the resource
  --scope SCOPE       one scope; a trailing /.default or /user_impersonation is removed
  --resource-type T   az's names for the public cloud's resources: oss-rdbms, arm, aad-graph,
                      ms-graph, batch, media, data-lake

Identity:
${IDENTITY_HELP}

Output: the bare token for "azmi token <resource>"; JSON, az's default, for az's forms (the
resource from az's flags or az's default, or --query); or -o:
  -o, --output FORMAT one of json, jsonc, tsv, yaml, yamlc, table, none, as az prints them
                      (jsonc and yamlc as json and yaml: az colours them only on a terminal;
                      none prints nothing, errors still go to stderr). The object has az's
                      fields, keys sorted as az sorts them, so a TSV read by position gets
                      az's columns: accessToken, expiresOn (local time, YYYY-MM-DD
                      HH:MM:SS.ffffff), expires_on (Unix seconds), subscription, tenant (the
                      token's tid claim; empty when the token is not a JWT), tokenType.
                      subscription is empty: a managed identity has none to tell (unless
                      --subscription gives one). TSV and table refuse a value with a control
                      character (exit code 1); JSON and YAML print it escaped
  --query JMESPATH    a field name (accessToken), a multi-select hash of field names
                      ({token:accessToken, exp:expires_on}) or a multi-select list of field
                      names ([accessToken, expiresOn]); anything else is a usage error
  --json              the same as -o json
  --subscription ID   (or -s, --name, -n) a subscription ID, printed as subscription; the token
                      is the same for every subscription
  --tenant ID         (or -t) refused, as az refuses it for a managed identity account ("Tenant
                      shouldn't be specified for managed identity account"), exit code 2
  --only-show-errors, --debug, --verbose
                      az's global flags, accepted for its scripts; they change nothing here
  --timeout MS        the whole command's deadline in milliseconds (default 20000), retries and
                      their waits included; at the deadline it stops with exit code 4. Each
                      attempt times out after 15000 ms or at the deadline. IMDS that never
                      answers, not even the first probe, is no managed identity (exit code 3)
  -h, --help          show this text

Exit codes: 0 token printed, 1 request failed, 2 usage error, 3 no managed identity reachable,
4 timeout, 5 configuration error.
`;

/** `azmi detect --help`. */
export const DETECT_HELP: string = `Usage: azmi detect [--json]

Tells which managed identity source this environment has and which variables led to it,
without touching the network. Secret values (IDENTITY_HEADER, MSI_SECRET) are never shown:
they appear as <set, redacted>; URLs appear without their user:password@ part ([redacted]@).
For workload identity, AZURE_FEDERATED_TOKEN_FILE's path is shown; the file is not read.
Control, format and separator characters in a value are shown escaped (\\x1b, \\u202e); with
--json, as JSON's \\u escapes.

Options:
  --json              print { source, variables, endpoint, note? }
  -h, --help          show this text

Exit codes: 0 detected, 2 usage error, 5 the environment cannot be read.
`;

/** `azmi doctor --help`. */
export const DOCTOR_HELP: string =
  `Usage: azmi doctor [resource] [--client-id ID | --object-id ID | --resource-id ID] [--timeout MS]

Explains, in three steps, whether this process can get a managed identity token:
  1. which source is detected, from which variables (secrets redacted);
  2. whether the endpoint's host and port accept a connection, and how fast (a plain GET of
     the endpoint's origin, without any secret header);
  3. a real token request for [resource] (default https://management.azure.com): the token's
     expiry, source and claims (aud, appid, oid) - never the token itself - or the error and
     what to do about it.

The token request makes one attempt, without retries, so the first failure shows as it is.

Options:
${IDENTITY_HELP}
  --timeout MS        the whole command's deadline in milliseconds (default 5000): the connection
                      check takes at most half of it (and at most 2000 ms), the token request
                      what is left
  -h, --help          show this text

Exit codes: 0 a token was acquired, 1 the request failed, 2 usage error, 3 no managed identity
reachable, 4 timeout, 5 configuration error.
`;

/** `azmi emulate --help`. */
export const EMULATE_HELP: string =
  `Usage: azmi emulate [--source NAME] [--port N] [--lifetime SECONDS] [--refresh-in SECONDS]
                    [--arc-key-dir DIR] [--federated-token-dir DIR] [--fail SCENARIOS]
       azmi emulate --tokens-from az|azd|sp [--tenant T] [--source appservice|imds]
                    [--listen ADDRESS] [--port N]

Runs local stand-ins of the managed identity endpoints on 127.0.0.1 (for workload identity,
Microsoft Entra ID's token endpoint and a federated token file) and prints, for a shell, the
variables that point a client at them. Tokens are RS256-signed v1 access tokens; the issuer and
the OpenID configuration and keys that validate them are printed too. Runs until Ctrl+C
(SIGINT) or SIGTERM.

Options:
  --source NAME       one source instead of all seven: ${ALL_SOURCES.join(", ")}
                      (any case), or wi, aks, imds, appservice, arc, cloudshell, servicefabric, ml
  --port N            the first port (the next sources take the following ones); default: free ports
  --lifetime SECONDS  token lifetime (default 3600)
  --refresh-in SECONDS  send refresh_in with every token
  --arc-key-dir DIR   where Azure Arc's challenge key files are written (default the agent's
                      ${ARC_LINUX_TOKEN_DIRECTORY}; a real client accepts keys only from there)
  --federated-token-dir DIR  where workload identity's federated token file is written, in a
                      private directory of its own (default the system's temporary directory);
                      removed at stop. Its path is printed, never its contents
  --fail SCENARIOS    rehearse failures: each source answers as its real endpoint does when
                      that goes wrong. A comma-separated list of NAME[=VALUE][:COUNT|:always][@SOURCE]:
                        throttled[=S]       429 with Retry-After: S seconds (default 1; 0: none)
                        unknown-resource    the source's error for a resource Entra does not know
                        updating            IMDS's 410 while it is being updated (IMDS only)
                        server-error[=N]    status N, 500 to 599 (default 500)
                        slow[=MS]           the normal answer, MS milliseconds late (default 3000)
                        silent              no answer at all, not even to IMDS's probe
                        no-identity         the answer when no such identity is assigned
                                            (not Cloud Shell, whose token is the signed-in user's)
                      COUNT token requests (default 1 for throttled, updating and server-error,
                      always for the others), then the next scenario of that source or the
                      normal answer; SOURCE one source (as --source names it), default every
                      one where it applies. Example: --fail throttled:2,server-error@imds

Real tokens, your own (the relay):
  --tokens-from KIND  serve real tokens instead of emulated ones, from az (az account
                      get-access-token), azd (azd auth token), or sp (AZURE_TENANT_ID,
                      AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE),
                      over App Service's protocol with a secret IDENTITY_HEADER generated at
                      start, so unchanged code (any Azure SDK) gets real tokens locally. Kept in
                      memory per resource until 5 minutes before expiry; one tool run per
                      resource at a time. A request naming a user-assigned identity gets your
                      token too (said once per ID on stderr). Prints the exports, a docker run
                      line and Compose's. On Deno, az and azd need --allow-run
  --tenant T          the tenant the tokens come from (az --tenant, azd --tenant-id)
  --source imds       IMDS's protocol instead (no secret: loopback only, with a warning)
  --listen ADDRESS    listen on this IP (default 127.0.0.1): loopback, or a private address
                      such as a Docker bridge's 172.17.0.1 (with a warning: whoever reaches it
                      and holds the secret gets your tokens)
  -h, --help          show this text

Exit codes: 0 stopped by a signal, 1 the emulator could not start, 2 usage error,
5 the service principal's variables are missing, Azure Arc's key directory or the federated token directory is not writable, or the runtime
refused a permission (the message names the flag).
`;
