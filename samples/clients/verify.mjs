// Interop check: a relying party built on the npm `jose` library verifies
// tokens minted by claimsmith, discovering everything from a running
// `claimsmith serve` as an OIDC client would.
//
//   CLAIMSMITH_URL=http://127.0.0.1:8080 ID_TOKEN=… ACCESS_TOKEN=… \
//   CLIENT_ID=app1 AUDIENCE=https://api.example.com [NONCE=…] \
//   [INTROSPECT_CLIENT=rs INTROSPECT_SECRET=…] node verify.mjs
//
// Prints a JSON report and exits 1 on the first failed check.
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

const env = (name, required = true) => {
  const v = process.env[name];
  if (required && !v) throw new Error(`environment variable ${name} is required`);
  return v;
};

const base = env('CLAIMSMITH_URL').replace(/\/$/, '');
const report = { checks: [] };
const ok = (name, detail = {}) => report.checks.push({ name, ok: true, ...detail });

async function mustFail(name, fn) {
  try {
    await fn();
  } catch (err) {
    ok(name, { rejected: err.code || err.name });
    return;
  }
  throw new Error(`${name}: was accepted`);
}

async function main() {
  // 1. Discovery.
  const res = await fetch(`${base}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`discovery: HTTP ${res.status}`);
  const meta = await res.json();
  if (meta.issuer !== base) throw new Error(`discovery: issuer ${meta.issuer}, want ${base}`);
  for (const k of ['jwks_uri', 'introspection_endpoint', 'revocation_endpoint', 'id_token_signing_alg_values_supported', 'introspection_signing_alg_values_supported']) {
    if (!meta[k]) throw new Error(`discovery: ${k} missing`);
  }
  ok('discovery', { issuer: meta.issuer, algs: meta.id_token_signing_alg_values_supported });

  // 2. JWKS, fetched and cached by jose.
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
  const algorithms = meta.id_token_signing_alg_values_supported;

  // 3. ID token (OIDC Core): iss, aud = client_id, typ JWT, nonce.
  const idToken = env('ID_TOKEN');
  const id = await jwtVerify(idToken, jwks, { issuer: meta.issuer, audience: env('CLIENT_ID'), typ: 'JWT', algorithms, requiredClaims: ['sub', 'exp', 'iat', 'auth_time'] });
  const nonce = env('NONCE', false);
  if (nonce && id.payload.nonce !== nonce) throw new Error(`id token: nonce ${id.payload.nonce}, want ${nonce}`);
  ok('id_token', { alg: id.protectedHeader.alg, kid: id.protectedHeader.kid, sub: id.payload.sub, claims: Object.keys(id.payload) });

  // 4. Access token (RFC 9068): typ at+jwt, aud = audience, client_id, jti, scope string.
  const accessToken = env('ACCESS_TOKEN');
  const at = await jwtVerify(accessToken, jwks, { issuer: meta.issuer, audience: env('AUDIENCE'), typ: 'at+jwt', algorithms, requiredClaims: ['sub', 'exp', 'iat', 'jti', 'client_id'] });
  if (at.payload.client_id !== env('CLIENT_ID')) throw new Error(`access token: client_id ${at.payload.client_id}`);
  if (typeof at.payload.scope !== 'string') throw new Error('access token: scope is not a string');
  ok('access_token', { alg: at.protectedHeader.alg, kid: at.protectedHeader.kid, scope: at.payload.scope, claims: Object.keys(at.payload) });

  // 5. What a relying party must refuse.
  await mustFail('access token used as an ID token', () => jwtVerify(accessToken, jwks, { issuer: meta.issuer, typ: 'JWT', algorithms }));
  await mustFail('ID token used as an access token', () => jwtVerify(idToken, jwks, { issuer: meta.issuer, typ: 'at+jwt', algorithms }));
  const [h, p, s] = accessToken.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  claims.sub = 'someone-else';
  const tampered = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
  await mustFail('tampered access token', () => jwtVerify(tampered, jwks, { issuer: meta.issuer, algorithms }));
  await mustFail('wrong audience', () => jwtVerify(accessToken, jwks, { issuer: meta.issuer, audience: 'https://not-this-api.example', algorithms }));

  // 6. RFC 9701 introspection answer, verified with the same JWKS.
  const client = env('INTROSPECT_CLIENT', false);
  if (client) {
    const r = await fetch(meta.introspection_endpoint, {
      method: 'POST',
      headers: {
        authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(client)}:${encodeURIComponent(env('INTROSPECT_SECRET'))}`).toString('base64'),
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/token-introspection+jwt',
      },
      body: new URLSearchParams({ token: accessToken }),
    });
    if (r.status !== 200) throw new Error(`introspection: HTTP ${r.status}`);
    const jwt = await r.text();
    if (decodeProtectedHeader(jwt).typ !== 'token-introspection+jwt') throw new Error('introspection: typ');
    const ti = await jwtVerify(jwt, jwks, { issuer: meta.issuer, audience: client, typ: 'token-introspection+jwt', algorithms: meta.introspection_signing_alg_values_supported });
    if (ti.payload.token_introspection?.active !== true || 'sub' in ti.payload || 'exp' in ti.payload) {
      throw new Error(`introspection: claims ${JSON.stringify(ti.payload)}`);
    }
    ok('introspection_jwt', { active: true, sub: ti.payload.token_introspection.sub });
  }
  report.ok = true;
  console.log(JSON.stringify(report, null, 2));
}

main().catch((err) => {
  report.ok = false;
  report.error = String(err && err.message ? err.message : err);
  console.log(JSON.stringify(report, null, 2));
  process.exit(1);
});
