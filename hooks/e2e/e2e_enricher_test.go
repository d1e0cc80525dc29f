package e2e_test

import (
	"testing"

	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

// e2eEnricher is what the Hydra end-to-end test runs: the real pipeline
// with the real built-in rules over the memory store.
func e2eEnricher(t *testing.T, store *memory.Store) runtime.Enricher {
	t.Helper()
	return hookstest.NewPipeline(t, store)
}
