// An Express API verifying claimsmith access tokens itself with
// express-oauth2-jwt-bearer: issuer discovery + JWKS, RFC 9068 checks, and
// claimCheck on claimsmith's namespaced claims.
const express = require('express');
const { auth, claimCheck, requiredScopes } = require('express-oauth2-jwt-bearer');

const NS = 'https://example.com/';
const app = express();

app.use(auth({
  issuerBaseURL: process.env.CLAIMSMITH_ISSUER || 'http://127.0.0.1:8080',
  audience: 'https://api.example.com/',
  tokenSigningAlg: 'ES256',         // claimsmith's keys: RS256 by default, ES256/PS256/EdDSA
}));

const hasPermission = (p) => claimCheck((claims) => (claims[NS + 'permissions'] || []).includes(p));
const hasRole = (...roles) => claimCheck((claims) => (claims[NS + 'roles'] || []).some((r) => roles.includes(r)));

app.get('/api/employees', hasPermission('employee:read'), (req, res) => {
  const claims = req.auth.payload;
  res.json({ caller: claims.sub, sensitive: (claims[NS + 'permissions'] || []).includes('employee:read-sensitive') });
});
app.delete('/api/employees/:id', hasRole('admin', 'hr-admin'), requiredScopes('write:employees'), (req, res) => res.status(204).end());

app.listen(3001, '127.0.0.1');
