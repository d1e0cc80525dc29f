package admin

import (
	"context"
	"encoding/json"
	"time"
)

// Record is one audited write: who (the key), what (action, entity, id),
// the state before and after, and when.
type Record struct {
	// Seq numbers records from 1 in the order they were written.
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	KeyID   string    `json:"key_id"`
	KeyName string    `json:"key_name"`
	// Action is e.g. "group.create", "group.members.add", "import",
	// "keys.rotate" (a signing-key rotation: Entity "signing_key", no
	// revision; see RotateSigningKey).
	Action   string `json:"action"`
	Entity   string `json:"entity,omitempty"` // group, role, permission, application, user, document
	EntityID string `json:"entity_id,omitempty"`
	// RevisionBefore and RevisionAfter are the store revisions the write
	// went from and to.
	RevisionBefore uint64 `json:"revision_before"`
	RevisionAfter  uint64 `json:"revision_after"`
	// Before and After are the entity as it was and became (null when it did
	// not exist); for an import, a summary of the document. For a write to
	// one id list (group.members.*, group.nested.*, group.roles.*,
	// group.mappings.remove, role.users.*, role.permissions.*) that list
	// holds only the ids the write named and a group's members (a role's
	// users) are left out unless written (IDListState): before and after
	// differ by exactly what was added or removed.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// RequestID ties the record to the request's logs.
	RequestID string `json:"request_id,omitempty"`
	// Recovered marks a record appended when the service reconciled the
	// write-ahead intent of a write whose process stopped between its
	// commit and its audit (Service.Reconcile); Time is then the write's.
	Recovered bool `json:"recovered,omitempty"`
}

// AuditQuery selects a page of records, newest first.
type AuditQuery struct {
	Page    int // 0-based
	PerPage int
	// Action, KeyName and EntityID filter exactly when non-empty.
	Action   string
	KeyName  string
	EntityID string
}

// AuditPage is one page of records, newest first.
type AuditPage struct {
	Records []Record
	Total   int // matching records
}

// AuditLog stores audit records.
type AuditLog interface {
	// Append stores r, assigning Seq (and Time when zero), and returns it.
	Append(ctx context.Context, r Record) (Record, error)
	// List returns a page of records, newest first.
	List(ctx context.Context, q AuditQuery) (AuditPage, error)
}

// IntentLog is the write-ahead side of an audit log, which a backend may
// implement (the file backend does). With it the service makes a commit and
// its audit record one durable step: before committing it stores the
// complete record as an intent; after appending the record it ends the
// intent. A process killed in between leaves the intent, and the next
// writer's Service.Reconcile appends the record if the write committed, or
// drops it if it did not. Only one writer may use an intent log at a time
// (the data dir's owner lock), as Reconcile reads the store's revision to
// tell a committed intent from an abandoned one.
type IntentLog interface {
	// BeginIntent durably stores r (Seq unset) and returns its id.
	BeginIntent(ctx context.Context, r Record) (string, error)
	// EndIntent forgets an intent; an unknown id is not an error. It need
	// not be durable: a forgotten intent that reappears after a crash is
	// found audited by the next reconciliation.
	EndIntent(ctx context.Context, id string) error
	// PendingIntents lists the intents not ended, oldest first.
	PendingIntents(ctx context.Context) ([]Intent, error)
}

// Intent is a pending write-ahead audit record.
type Intent struct {
	ID     string
	Record Record
}
