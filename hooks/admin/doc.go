// Package admin is the admin API: JSON under /api/ for groups, roles,
// permissions, applications, users, import/export and the audit log, on the
// extension's paths where it had them. It maps HTTP onto the admin
// application service (runtime/admin.Service): every route declares the key
// scope it needs and authentication happens before any body is read; reads
// carry the store revision as ETag, writes go through Service.Apply with the
// caller's If-Match, which retries, commits and audits.
package admin
