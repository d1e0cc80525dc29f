package redis

import (
	"strconv"
)

// Key layout. Every key of one store shares the hash tag {tag}, so the whole
// store lives in one Cluster slot: MULTI/EXEC with WATCH and the login script
// may touch any of them (Redis refuses cross-slot transactions). A Cluster
// still spreads the policy cache and other stores (other tags) over its
// nodes.
//
//	<prefix>{<tag>}:rev          store revision (INCR on every write)
//	<prefix>{<tag>}:srev         structure version: a random token replaced by
//	                             every write that changes groups, nesting,
//	                             mappings, roles or permissions (not members)
//	<prefix>{<tag>}:init         the store's marker: written when a server opens
//	                             the store and by every import; its absence
//	                             after it was seen means Redis lost the data
//	<prefix>{<tag>}:gen          current generation (an import writes a new one)
//	<prefix>{<tag>}:genctr       generation counter
//	<prefix>{<tag>}:prof:<user>  profile JSON; ...:profs is the set of user ids
//	<prefix>{<tag>}:<gen>:...    the model of one generation:
//	  seq            storage-order counter
//	  G R P          zsets of group / role / permission ids by storage order
//	  g:<id>         group record (the extension's JSON, verbatim) without members
//	  gm:<id>        the group's members (JSON array, order and all)
//	  r:<id>         role record without users; ru:<id> its users (JSON array)
//	  p:<id>         permission record
//	  A  AO          applications: hash client_id → JSON, zset of storage order
//	  conf           configuration records (JSON array)
//	  ug:<user>      set of the user's direct groups  (login path)
//	  ur:<user>      set of the user's direct roles   (login path)
//	  gp:<gid>       set of the groups nesting gid    (delete check)
//	  rg:<rid>       set of the groups holding rid    (delete check)
//	  pr:<pid>       set of the roles granting pid    (delete check)
//	  gn:<folded name>             set of group ids with that name (any case)
//	  rn:<len>:<app><name>, pn:…   role / permission name indexes per application
type keys struct {
	base string // <prefix>{<tag>}:
}

func newKeys(prefix, tag string) keys { return keys{base: prefix + "{" + tag + "}:"} }

func (k keys) rev() string                { return k.base + "rev" }
func (k keys) srev() string               { return k.base + "srev" }
func (k keys) gen() string                { return k.base + "gen" }
func (k keys) marker() string             { return k.base + "init" }
func (k keys) genCounter() string         { return k.base + "genctr" }
func (k keys) profile(user string) string { return k.base + "prof:" + user }
func (k keys) profiles() string           { return k.base + "profs" }
func (k keys) ns(gen uint64) ns           { return ns(k.base + strconv.FormatUint(gen, 10) + ":") }

// ns is the key prefix of one generation.
type ns string

func (n ns) seq() string                  { return string(n) + "seq" }
func (n ns) groups() string               { return string(n) + "G" }
func (n ns) roles() string                { return string(n) + "R" }
func (n ns) perms() string                { return string(n) + "P" }
func (n ns) group(id string) string       { return string(n) + "g:" + id }
func (n ns) members(id string) string     { return string(n) + "gm:" + id }
func (n ns) role(id string) string        { return string(n) + "r:" + id }
func (n ns) roleUsers(id string) string   { return string(n) + "ru:" + id }
func (n ns) perm(id string) string        { return string(n) + "p:" + id }
func (n ns) apps() string                 { return string(n) + "A" }
func (n ns) appOrder() string             { return string(n) + "AO" }
func (n ns) conf() string                 { return string(n) + "conf" }
func (n ns) parents(id string) string     { return string(n) + "gp:" + id }
func (n ns) userGroups(u string) string   { return string(n) + "ug:" + u }
func (n ns) userRoles(u string) string    { return string(n) + "ur:" + u }
func (n ns) groupName(name string) string { return string(n) + "gn:" + foldKey(name) }
func (n ns) roleName(app, name string) string {
	return string(n) + "rn:" + strconv.Itoa(len(app)) + ":" + app + name
}
func (n ns) permName(app, name string) string {
	return string(n) + "pn:" + strconv.Itoa(len(app)) + ":" + app + name
}
func (n ns) roleGroups(id string) string { return string(n) + "rg:" + id }
func (n ns) permRoles(id string) string  { return string(n) + "pr:" + id }
