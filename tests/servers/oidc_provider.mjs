// A real OpenID Provider for the tests: node-oidc-provider, installed by tests/servers/oidc.py
// into a cache directory, listening on 127.0.0.1 with its development sign-in pages.
//
//   OIDC_PROVIDER_MODULE=/path/to/node_modules/oidc-provider/lib/index.js \
//   OIDC_TEST_CONFIG='{"port": 4000, "clients": [...], "accounts": {"alice": {"zones": ["example.com"]}}}' \
//   node provider.mjs
//
// Accounts are the only users it knows (any password signs them in); each one's `zones`
// becomes the `zones` claim of its ID token when the `zones` scope is asked for.
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);
const settings = JSON.parse(process.env.OIDC_TEST_CONFIG);
const issuer = `http://127.0.0.1:${settings.port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: settings.clients,
  jwks: { keys: [signingKey] },
  scopes: ['openid', 'zones'],
  claims: { openid: ['sub'], zones: ['zones'] },
  conformIdTokenClaims: false, // the zones claim goes into the ID token itself
  cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(_ctx, id) {
    const account = settings.accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, zones: account.zones }; } };
  },
});
provider.on('server_error', (_ctx, error) => console.error('server_error', error));
provider.listen(settings.port, '127.0.0.1', () => console.log(`listening ${issuer}`));
