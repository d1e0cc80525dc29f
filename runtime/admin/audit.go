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
	// Action is e.g. "group.create", "group.members.add", "import".
	Action   string `json:"action"`
	Entity   string `json:"entity,omitempty"` // group, role, permission, application, user, document
	EntityID string `json:"entity_id,omitempty"`
	// RevisionBefore and RevisionAfter are the store revisions the write
	// went from and to.
	RevisionBefore uint64 `json:"revision_before"`
	RevisionAfter  uint64 `json:"revision_after"`
	// Before and After are the entity as it was and became (null when it did
	// not exist); for an import, a summary of the document.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// RequestID ties the record to the request's logs.
	RequestID string `json:"request_id,omitempty"`
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
