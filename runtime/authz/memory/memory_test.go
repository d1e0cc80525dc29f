package memory_test

import (
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

func TestConformance(t *testing.T) {
	authztest.Run(t, func(t *testing.T) authz.Store { return memory.New(memory.Options{}) })
}
