/**
 * Auth0 post-login Action: enrich the login with claimsmith.
 *
 * Sends the login to claimsmith's native trigger POST /hooks/v1/post-login,
 * signed with Standard Webhooks (webhook-id, webhook-timestamp,
 * webhook-signature), and applies the answer: ID- and access-token claims,
 * scope changes, app_metadata changes (kept even when the login is denied,
 * as Auth0 itself does) and the access decision.
 *
 * Secrets of the Action:
 *   CLAIMSMITH_URL             e.g. https://claimsmith.example.com
 *   CLAIMSMITH_WEBHOOK_SECRET  whsec_<base64>, the caller's webhook secret in
 *                              claimsmith's hooks.native.callers
 *   CLAIMSMITH_TIMEOUT_MS      optional, default 5000
 *
 * It fails closed: when claimsmith cannot be reached, answers an error or
 * takes too long, the login is denied (the Authorization Extension did the
 * same). Requires Node 18+ (global fetch), as Auth0 Actions provide.
 */
'use strict';

const crypto = require('node:crypto');

/** The fields of Auth0's event claimsmith reads (never event.secrets). */
function toNativeEvent(event) {
  const u = event.user || {};
  const c = event.client || {};
  const conn = event.connection || {};
  const req = event.request || {};
  const tx = event.transaction || {};
  const out = {
    trigger: 'post-login',
    user: {
      user_id: u.user_id,
      email: u.email,
      email_verified: u.email_verified,
      name: u.name,
      nickname: u.nickname,
      username: u.username,
      phone_number: u.phone_number,
      picture: u.picture,
      app_metadata: u.app_metadata || {},
      user_metadata: u.user_metadata || {},
      identities: (u.identities || []).map((i) => ({
        connection: i.connection, provider: i.provider, user_id: String(i.user_id), is_social: !!i.isSocial,
      })),
      created_at: u.created_at,
      last_login: u.last_login,
      logins_count: (event.stats && event.stats.logins_count) || u.logins_count,
    },
    client: { client_id: c.client_id, name: c.name, metadata: c.metadata || {} },
    connection: { id: conn.id, name: conn.name, strategy: conn.strategy },
    request: {
      ip: req.ip,
      user_agent: req.user_agent,
      hostname: req.hostname,
      method: req.method,
      language: req.language,
      query: stringValues(req.query),
    },
    transaction: {
      requested_scopes: tx.requested_scopes || [],
      audience: (req.query && req.query.audience) || undefined,
      protocol: tx.protocol,
      id: tx.id,
    },
  };
  // Enterprise connections (AD/LDAP, SAML, OIDC) report the user's groups.
  if (Array.isArray(u.groups)) out.user.groups = u.groups.filter((g) => typeof g === 'string');
  if (req.geoip) {
    out.request.geoip = {
      country_code: req.geoip.countryCode, country_name: req.geoip.countryName, city_name: req.geoip.cityName,
      latitude: req.geoip.latitude, longitude: req.geoip.longitude, time_zone: req.geoip.timeZone,
    };
  }
  return out;
}

function stringValues(q) {
  const out = {};
  for (const [k, v] of Object.entries(q || {})) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Standard Webhooks headers for body, signed with a whsec_ secret. */
function signWebhook(secret, body, now = Date.now()) {
  const b64 = String(secret).trim().replace(/^v1,/, '');
  if (!b64.startsWith('whsec_')) throw new Error('CLAIMSMITH_WEBHOOK_SECRET must look like whsec_<base64>');
  const key = Buffer.from(b64.slice('whsec_'.length), 'base64');
  const id = 'msg_' + crypto.randomUUID();
  const ts = String(Math.floor(now / 1000));
  const sig = crypto.createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${sig}` };
}

/** Applies claimsmith's answer through the Actions api object. */
function applyAnswer(answer, api) {
  // Metadata first: Auth0 keeps app_metadata changes of a denied login.
  for (const [k, v] of Object.entries(answer.app_metadata || {})) api.user.setAppMetadata(k, v);
  for (const [k, v] of Object.entries(answer.user_metadata || {})) api.user.setUserMetadata(k, v);
  const d = answer.decision || {};
  if (!d.allowed) {
    api.access.deny(d.reason || 'Access denied');
    return;
  }
  for (const [k, v] of Object.entries(answer.id_token_claims || {})) api.idToken.setCustomClaim(k, v);
  for (const [k, v] of Object.entries(answer.access_token_claims || {})) api.accessToken.setCustomClaim(k, v);
  for (const s of answer.scopes_added || []) api.accessToken.addScope(s);
  for (const s of answer.scopes_removed || []) api.accessToken.removeScope(s);
}

exports.onExecutePostLogin = async (event, api) => {
  const base = String(event.secrets.CLAIMSMITH_URL || '').replace(/\/+$/, '');
  const timeout = Number(event.secrets.CLAIMSMITH_TIMEOUT_MS) || 5000;
  const body = JSON.stringify(toNativeEvent(event));
  let answer;
  try {
    const res = await fetch(`${base}/hooks/v1/post-login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signWebhook(event.secrets.CLAIMSMITH_WEBHOOK_SECRET, body) },
      body,
      signal: AbortSignal.timeout(timeout),
    });
    if (!res.ok) {
      const text = await res.text();
      throw new Error(`claimsmith answered ${res.status}: ${text.slice(0, 200)}`);
    }
    answer = await res.json();
  } catch (err) {
    console.log(`claimsmith: ${err.message}`);
    api.access.deny('Authorization service unavailable');
    return;
  }
  applyAnswer(answer, api);
};

// For the tests in this folder.
exports.toNativeEvent = toNativeEvent;
exports.signWebhook = signWebhook;
exports.applyAnswer = applyAnswer;
