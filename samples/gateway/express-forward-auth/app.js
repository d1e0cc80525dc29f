// An Express app behind nginx with claimsmith forward-auth (nginx.conf in
// the folder above): nginx has already authorized the request; the identity
// arrives in X-Auth-* headers (comma-separated, each value percent-encoded).
const express = require('express');
const app = express();

function identity(req) {
  const list = (h) => (req.get(h) || '').split(',').filter(Boolean).map(decodeURIComponent);
  return {
    sub: decodeURIComponent(req.get('X-Auth-Subject') || ''),
    groups: list('X-Auth-Groups'),
    roles: list('X-Auth-Roles'),
    permissions: list('X-Auth-Permissions'),
  };
}

app.get('/api/employees', (req, res) => {
  const who = identity(req);
  res.json({ caller: who.sub, canSeeSalaries: who.permissions.includes('employee:read-sensitive') });
});

app.listen(3000, '127.0.0.1');
