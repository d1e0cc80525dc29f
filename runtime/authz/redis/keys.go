package redis

import (
	"strconv"
)

// Key layout. Every key of one store shares the hash tag {tag}, so the whole
// store lives in one Cluster slot: MULTI/EXEC with WATCH and the login script
// may touch any of them (Redis refuses cross-slot transactions). A Cluster
// still spreads the policy cache and other tenants' stores over its nodes.
//
//	<prefix>{<tag>}:rev              store revision (INCR on every write)
//	<prefix>{<tag>}:gen              current generation (an import writes a new one)
//	<prefix>{<tag>}:genctr           generation counter
//	<prefix>{<tag>}:prof:<user>      profile JSON; ...:profs set of user ids
//	<prefix>{<tag>}:<gen>:...        the model of one generation:
//	  seq                 storage-order counter
//	  G R P               zsets of group/role/permission ids by storage order
//	  g:<id> r:<id> p:<id>  entity records: the extension's JSON, verbatim
//	  A  AO               applications: hash client_id → JSON, zset order
//	  conf                configuration records (JSON array)
//	  gx:<gid>            hash {s: seq, n: name}       (login path)
//	  gp:<gid>            set of parent group ids      (login path, delete check)
//	  grl:<gid>           set of the group's role ids  (login path)
//	  ug:<user>           set of the user's direct groups (login path)
//	  ur:<user>           set of the user's direct roles  (login path)
//	  mp:<len>:<conn><idp group>  set of group ids mapping it (login path)
//	  rx:<rid>            hash {s, n, t: applicationType, a: applicationId}
//	  rpm:<rid>           set of the role's permission ids
//	  px:<pid>            hash {s, n}
//	  gn:<folded name>    set of group ids with that name (case-insensitive)
//	  rn:<len>:<app><name>, pn:<len>:<app><name>  name indexes per application
//	  rg:<rid>            set of groups holding the role   (delete check)
//	  pr:<pid>            set of roles granting the permission (delete check)
type keys struct {
	base string // <prefix>{<tag>}:
}

func newKeys(prefix, tag string) keys { return keys{base: prefix + "{" + tag + "}:"} }

func (k keys) rev() string                { return k.base + "rev" }
func (k keys) gen() string                { return k.base + "gen" }
func (k keys) genCounter() string         { return k.base + "genctr" }
func (k keys) profile(user string) string { return k.base + "prof:" + user }
func (k keys) profiles() string           { return k.base + "profs" }
func (k keys) ns(gen uint64) ns           { return ns(k.base + strconv.FormatUint(gen, 10) + ":") }

// ns is the key prefix of one generation.
type ns string

func (n ns) seq() string                 { return string(n) + "seq" }
func (n ns) groups() string              { return string(n) + "G" }
func (n ns) roles() string               { return string(n) + "R" }
func (n ns) perms() string               { return string(n) + "P" }
func (n ns) group(id string) string      { return string(n) + "g:" + id }
func (n ns) role(id string) string       { return string(n) + "r:" + id }
func (n ns) perm(id string) string       { return string(n) + "p:" + id }
func (n ns) apps() string                { return string(n) + "A" }
func (n ns) appOrder() string            { return string(n) + "AO" }
func (n ns) conf() string                { return string(n) + "conf" }
func (n ns) groupMeta(id string) string  { return string(n) + "gx:" + id }
func (n ns) parents(id string) string    { return string(n) + "gp:" + id }
func (n ns) groupRoles(id string) string { return string(n) + "grl:" + id }
func (n ns) userGroups(u string) string  { return string(n) + "ug:" + u }
func (n ns) userRoles(u string) string   { return string(n) + "ur:" + u }
func (n ns) mapping(conn, name string) string {
	return string(n) + "mp:" + strconv.Itoa(len(conn)) + ":" + conn + name
}
func (n ns) roleMeta(id string) string    { return string(n) + "rx:" + id }
func (n ns) rolePerms(id string) string   { return string(n) + "rpm:" + id }
func (n ns) permMeta(id string) string    { return string(n) + "px:" + id }
func (n ns) groupName(name string) string { return string(n) + "gn:" + foldKey(name) }
func (n ns) roleName(app, name string) string {
	return string(n) + "rn:" + strconv.Itoa(len(app)) + ":" + app + name
}
func (n ns) permName(app, name string) string {
	return string(n) + "pn:" + strconv.Itoa(len(app)) + ":" + app + name
}
func (n ns) roleGroups(id string) string { return string(n) + "rg:" + id }
func (n ns) permRoles(id string) string  { return string(n) + "pr:" + id }
