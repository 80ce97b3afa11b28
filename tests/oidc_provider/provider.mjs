// A real OpenID Provider for the OIDC tests (tests/test_oidc_login.py): npm oidc-provider,
// an OpenID-certified implementation, with its development log-in and consent pages.
//
// Configured from the environment by the test:
//   OIDC_TEST_ISSUER    e.g. http://127.0.0.2:43123 (it listens on that host and port)
//   OIDC_TEST_CLIENTS   JSON list of clients: [{client_id, client_secret, redirect_uris}]
//   OIDC_TEST_ACCOUNTS  path of a JSON file {accountId: {email, email_verified, name, groups}},
//                       read again at every claims request, so a test can change a user's
//                       groups "at the IdP" between two log-ins.
// A fresh RSA signing key is made at every start: restarting the process rotates the key.
// Prints "ready <issuer>" on stdout once it listens.
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const issuer = process.env.OIDC_TEST_ISSUER;
const clients = JSON.parse(process.env.OIDC_TEST_CLIENTS ?? "[]");
const accountsFile = process.env.OIDC_TEST_ACCOUNTS;
if (!issuer || !accountsFile || clients.length === 0) {
  console.error("set OIDC_TEST_ISSUER, OIDC_TEST_CLIENTS and OIDC_TEST_ACCOUNTS");
  process.exit(2);
}

function accounts() {
  return JSON.parse(readFileSync(accountsFile, "utf8"));
}

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: randomUUID(), use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: clients.map((client) => ({
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    ...client,
  })),
  jwks: { keys: [signingKey] },
  // The groups claim travels with the `profile` scope here (IdPs differ: Keycloak and
  // Authentik use mappers or a `groups` scope); with conformIdTokenClaims (the default) the
  // ID token of the code flow carries only sub, so the RP reads email and groups from userinfo.
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "groups"],
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["ragql-test-oidc-provider-cookie-key"] },
  async findAccount(_ctx, id) {
    const account = accounts()[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        // Read again: the test may have changed the account since the log-in.
        const current = accounts()[id] ?? account;
        return { sub: id, ...current };
      },
    };
  },
});
// Tokens signed by a key the RP has not seen yet are the point of the rotation test; the
// provider itself must not warn about http on loopback.
provider.proxy = false;

const url = new URL(issuer);
provider.listen(Number(url.port), url.hostname, () => {
  console.log(`ready ${issuer}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
