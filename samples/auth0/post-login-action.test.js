// Runs post-login-action.js against a running claimsmith with a stub `api`
// that records every call. Started by hooks/auth0_test.go (go test), which
// serves the native triggers on loopback and sets:
//   CLAIMSMITH_URL, CLAIMSMITH_WEBHOOK_SECRET, CLAIMSMITH_NS (claim namespace)
// Run by hand: node --test samples/auth0/post-login-action.test.js
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const action = require('./post-login-action.js');

const URL_ = process.env.CLAIMSMITH_URL;
const SECRET = process.env.CLAIMSMITH_WEBHOOK_SECRET;
const NS = process.env.CLAIMSMITH_NS || 'https://claimsmith.test/';

function stubApi() {
  const calls = [];
  const rec = (name) => (...args) => { calls.push([name, ...args]); };
  return {
    calls,
    api: {
      idToken: { setCustomClaim: rec('idToken.setCustomClaim') },
      accessToken: {
        setCustomClaim: rec('accessToken.setCustomClaim'),
        addScope: rec('accessToken.addScope'),
        removeScope: rec('accessToken.removeScope'),
      },
      user: { setAppMetadata: rec('user.setAppMetadata'), setUserMetadata: rec('user.setUserMetadata') },
      access: { deny: rec('access.deny') },
    },
  };
}

function auth0Event(userId, extra = {}) {
  return {
    user: {
      user_id: userId,
      email: `${userId}@example.com`,
      email_verified: true,
      name: userId,
      app_metadata: {},
      user_metadata: {},
      identities: [{ connection: 'Username-Password-Authentication', provider: 'auth0', user_id: userId, isSocial: false }],
      ...extra.user,
    },
    client: { client_id: 'portal', name: 'Portal', metadata: {} },
    connection: { id: 'con_1', name: 'Username-Password-Authentication', strategy: 'auth0' },
    request: { ip: '203.0.113.7', hostname: 'acme.eu.auth0.com', method: 'GET', query: { scope: 'openid' }, geoip: { countryCode: 'DE' } },
    transaction: { requested_scopes: ['openid'], protocol: 'oidc-basic-profile' },
    stats: { logins_count: 3 },
    secrets: { CLAIMSMITH_URL: URL_, CLAIMSMITH_WEBHOOK_SECRET: SECRET, ...extra.secrets },
  };
}

const calls = (c, name) => c.filter((x) => x[0] === name).map((x) => x.slice(1));

test('environment', () => {
  assert.ok(URL_, 'CLAIMSMITH_URL is set');
  assert.ok(SECRET, 'CLAIMSMITH_WEBHOOK_SECRET is set');
});

test('an allowed login gets namespaced claims and app_metadata', async () => {
  const { api, calls: c } = stubApi();
  await action.onExecutePostLogin(auth0Event('alice'), api);
  assert.deepEqual(calls(c, 'access.deny'), []);
  assert.deepEqual(calls(c, 'idToken.setCustomClaim'), [
    [`${NS}groups`, ['Staff', 'Engineering', 'Backend']],
    [`${NS}roles`, ['portal-viewer', 'portal-editor']],
  ]);
  assert.deepEqual(calls(c, 'accessToken.setCustomClaim'), [
    [`${NS}roles`, ['portal-viewer', 'portal-editor']],
    [`${NS}permissions`, ['docs:read', 'docs:write']],
  ]);
  const meta = calls(c, 'user.setAppMetadata');
  assert.equal(meta.length, 1);
  assert.equal(meta[0][0], 'authorization');
  assert.deepEqual(meta[0][1].groups, ['Staff', 'Engineering', 'Backend']);
});

test('a user without the required role is denied with the reason', async () => {
  const { api, calls: c } = stubApi();
  await action.onExecutePostLogin(auth0Event('bob'), api);
  assert.deepEqual(calls(c, 'access.deny'), [['You do not have the required role to access Portal']]);
  assert.deepEqual(calls(c, 'idToken.setCustomClaim'), []);
  assert.deepEqual(calls(c, 'accessToken.setCustomClaim'), []);
  // Metadata of a denied login is still applied, as Auth0 does.
  assert.equal(calls(c, 'user.setAppMetadata').length, 1);
});

test('a wrong secret fails closed', async () => {
  const { api, calls: c } = stubApi();
  const wrong = 'whsec_' + Buffer.from('not-the-secret').toString('base64');
  await action.onExecutePostLogin(auth0Event('alice', { secrets: { CLAIMSMITH_WEBHOOK_SECRET: wrong } }), api);
  assert.deepEqual(calls(c, 'access.deny'), [['Authorization service unavailable']]);
  assert.deepEqual(calls(c, 'idToken.setCustomClaim'), []);
});

test('claimsmith unreachable fails closed', async () => {
  const { api, calls: c } = stubApi();
  await action.onExecutePostLogin(auth0Event('alice', { secrets: { CLAIMSMITH_URL: 'http://127.0.0.1:9', CLAIMSMITH_TIMEOUT_MS: '2000' } }), api);
  assert.deepEqual(calls(c, 'access.deny'), [['Authorization service unavailable']]);
});

test('the signature is Standard Webhooks', () => {
  // The example of the Standard Webhooks specification, with its id and time.
  const crypto = require('node:crypto');
  const key = Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64');
  const sig = crypto.createHmac('sha256', key).update('msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}').digest('base64');
  assert.equal(sig, 'g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  const h = action.signWebhook('v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{}', 1614265330000);
  assert.match(h['webhook-id'], /^msg_/);
  assert.equal(h['webhook-timestamp'], '1614265330');
  assert.match(h['webhook-signature'], /^v1,[A-Za-z0-9+/]{43}=$/);
  assert.throws(() => action.signWebhook('plain', '{}'));
});

test('the native event leaves secrets out', () => {
  const ev = action.toNativeEvent(auth0Event('alice', { user: { groups: ['ad-eng', 7] } }));
  assert.equal(JSON.stringify(ev).includes(SECRET), false);
  assert.deepEqual(ev.user.groups, ['ad-eng']);
  assert.equal(ev.request.geoip.country_code, 'DE');
  assert.equal(ev.client.client_id, 'portal');
});
