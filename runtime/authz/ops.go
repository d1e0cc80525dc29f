package authz

// Op is one change to the model. Document-backed stores (memory, file) call
// Apply on a private deep copy of the current document and commit the copy
// only when every op of a batch succeeded; the redis store switches on the
// concrete op types and writes per-record keys. Ops validate their input and
// referential rules and return errors matching the runtime sentinels.
type Op interface {
	Apply(doc *Document) error
}
