package file_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
)

// BenchmarkResolvePolicy is the login path through the store: the refresh
// check (a clock read; a stat of HEAD once per RefreshInterval) plus Resolve.
func BenchmarkResolvePolicy(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	spec := authzgen.BenchSpec(1000)
	if _, err := s.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authzgen.Generate(spec)}); err != nil {
		b.Fatal(err)
	}
	q := authzgen.BenchQuery()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ResolvePolicy(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProfile is the read a login does before running the rules.
func BenchmarkProfile(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	if _, err := s.PatchProfile(ctx, "auth0|alice", map[string]any{"plan": "gold", "authorization": map[string]any{"groups": []any{"a", "b"}}}, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Profile(ctx, "auth0|alice"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPatchProfile is the write a login does after the rules: one
// user's file rewritten durably (fsync) under the lock.
func BenchmarkPatchProfile(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.PatchProfile(ctx, fmt.Sprintf("auth0|user-%d", i%100), map[string]any{"logins": i}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyLarge is one admin write (add a member) to the 100,000-user
// model: the whole document is re-encoded, written durably and re-indexed.
func BenchmarkApplyLarge(b *testing.B) {
	ctx := context.Background()
	s, err := file.Open(ctx, b.TempDir(), file.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authzgen.Generate(authzgen.BenchSpec(100000))}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.Apply(ctx, 0, &authz.AddGroupMembers{GroupID: "group-00001", UserIDs: []string{fmt.Sprintf("auth0|new-%d", i)}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPatchProfileUnchanged is the common login: the authorization
// persisted last time is persisted again, so nothing is written.
func BenchmarkPatchProfileUnchanged(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	patch := map[string]any{"authorization": map[string]any{"groups": []any{"Engineering"}, "roles": []any{"editor"}}}
	if _, err := s.PatchProfile(ctx, "auth0|alice", patch, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.PatchProfile(ctx, "auth0|alice", patch, nil); err != nil {
			b.Fatal(err)
		}
	}
}
