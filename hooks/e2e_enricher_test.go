package hooks_test

import (
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

// e2eEnricher is the enricher the Hydra end-to-end test runs.
func e2eEnricher(t *testing.T, store *memory.Store) runtime.Enricher {
	t.Helper()
	return &storeEnricher{store: store}
}
