// Test OpenID provider for Lifeline's SSO tests (panva's oidc-provider, devInteractions login form).
// env: OIDC_PORT, OIDC_REDIRECT_URIS (comma-separated), OIDC_ACCOUNTS_FILE (JSON, re-read at every
// sign-in so a test can take a person out of a group at the provider).
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const PORT = Number(process.env.OIDC_PORT);
const ISSUER = `http://127.0.0.1:${PORT}`;
const REDIRECTS = (process.env.OIDC_REDIRECT_URIS || '').split(',').filter(Boolean);
const LOGOUTS = REDIRECTS.map((u) => new URL('/login?signed_out=1', u).href);
const accounts = () => JSON.parse(readFileSync(process.env.OIDC_ACCOUNTS_FILE, 'utf8'));

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: REDIRECTS,
  post_logout_redirect_uris: LOGOUTS,
});

const provider = new Provider(ISSUER, {
  clients: [client('lifeline'), client('other-app')],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups'] },
  conformIdTokenClaims: false,
  cookies: { keys: ['test-only-cookie-key'] },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(ctx, id) {
    const acct = accounts()[id];
    if (!acct) return undefined;
    return { accountId: id, async claims() { return { sub: id, preferred_username: id, ...accounts()[id] }; } };
  },
});
provider.proxy = false;
provider.listen(PORT, '127.0.0.1', () => console.log(`oidc-provider listening on ${ISSUER}`));
