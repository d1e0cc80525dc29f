// A real, hookless upstream OpenID Provider (oidc-provider) for the token
// exchange e2e. It serves on 127.0.0.1 (random port), logs alice in
// headlessly through its dev interactions (authorization code + PKCE, with
// a cookie jar), and prints one JSON line: {"issuer", "id_token"}. Then it
// reads JSON lines on stdin, each {"jwks_uri","issuer","audience","token"},
// verifies the token with jose against claimsmith's JWKS and prints
// {"ok":true,"payload":…} or {"ok":false,"error":…}. It exits when stdin ends.
import crypto from 'node:crypto';
import readline from 'node:readline';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const CLIENT = { client_id: 'app-at-upstream', client_secret: 'upstream-secret-0123456789abcdef', redirect_uris: ['http://127.0.0.1/cb'] };

const accounts = {
  alice: { sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice', groups: ['eng', 'unmapped'] },
};

async function main() {
  const srv = (await import('node:http')).createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${srv.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{ ...CLIENT, grant_types: ['authorization_code'], response_types: ['code'] }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // Put the scope's claims in the ID token (the exchanged token), not
    // only behind userinfo.
    conformIdTokenClaims: false,
    cookies: { keys: ['e2e-cookie-key-0123456789'] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
    features: { devInteractions: { enabled: true } },
    findAccount: async (_ctx, id) => accounts[id] && { accountId: id, claims: async () => accounts[id] },
  });
  srv.on('request', provider.callback());

  const idToken = await login(issuer, 'alice');
  process.stdout.write(JSON.stringify({ issuer, id_token: idToken }) + '\n');

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    try {
      const jwks = jose.createRemoteJWKSet(new URL(req.jwks_uri));
      const { payload, protectedHeader } = await jose.jwtVerify(req.token, jwks, { issuer: req.issuer, audience: req.audience, typ: 'at+jwt' });
      process.stdout.write(JSON.stringify({ ok: true, payload, alg: protectedHeader.alg }) + '\n');
    } catch (err) {
      process.stdout.write(JSON.stringify({ ok: false, error: String(err) }) + '\n');
    }
  }
  srv.close();
}

// login runs the authorization code flow headlessly: /auth, the dev login
// form, the dev consent form, the code at /token.
async function login(issuer, user) {
  const jar = new Map();
  const go = async (url, init = {}) => {
    const headers = { ...(init.headers || {}) };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(new URL(url, issuer), { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv.indexOf('=');
      jar.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return res;
  };
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({ client_id: CLIENT.client_id, redirect_uri: CLIENT.redirect_uris[0], response_type: 'code',
    scope: 'openid email profile groups', nonce: crypto.randomUUID(), state: 's', code_challenge: challenge, code_challenge_method: 'S256' });
  let res = await go(`/auth?${q}`);
  const form = (body) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
  for (let step = 0; step < 10; step++) {
    const loc = res.headers.get('location');
    if (!loc) throw new Error(`no redirect at step ${step}: ${res.status} ${await res.text()}`);
    const u = new URL(loc, issuer);
    if (u.href.startsWith(CLIENT.redirect_uris[0])) {
      const code = u.searchParams.get('code');
      if (!code) throw new Error(`no code: ${u}`);
      const tok = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded',
          authorization: 'Basic ' + Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64') },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CLIENT.redirect_uris[0], code_verifier: verifier }),
      });
      const body = await tok.json();
      if (!body.id_token) throw new Error(`token endpoint: ${JSON.stringify(body)}`);
      return body.id_token;
    }
    const m = u.pathname.match(/^\/interaction\/([^/]+)$/);
    if (m) {
      const page = await (await go(u.pathname)).text();
      const prompt = page.includes('name="login"') ? { prompt: 'login', login: user, password: 'any' } : { prompt: 'consent' };
      res = await go(u.pathname, form(prompt));
      continue;
    }
    res = await go(u.pathname + u.search);
  }
  throw new Error('login did not finish');
}

main().catch((err) => { process.stderr.write(String(err.stack || err) + '\n'); process.exit(1); });
