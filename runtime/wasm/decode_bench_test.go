package wasm

import (
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

// BenchmarkDecodeCommands: the host's share of every call, decoding a
// typical rule output strictly.
func BenchmarkDecodeCommands(b *testing.B) {
	out := []byte(`{"id_token":{"claims":{"https://example.com/tenant":"acme.example"}},"access_token":{"claims":{"https://example.com/tenant":"acme.example"}},"log":[{"level":"debug","msg":"tenant acme.example"}]}`)
	var c runtime.Commands
	b.ReportAllocs()
	for b.Loop() {
		c.Reset()
		if err := decodeCommands(out, &c); err != nil {
			b.Fatal(err)
		}
	}
}
