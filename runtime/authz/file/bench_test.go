package file_test

import (
	"context"
	"fmt"
	"sync/atomic"
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

// reportIO adds the store's file-system calls and syncs per op.
func reportIO(b *testing.B, s *file.Store, before file.IOStats) {
	after := s.IOStats()
	b.ReportMetric(float64(after.Ops-before.Ops)/float64(b.N), "fsops/op")
	b.ReportMetric(float64(after.Syncs-before.Syncs)/float64(b.N), "syncs/op")
}

// BenchmarkProfile is the read a login does before running the rules: from
// the owner's memory.
func BenchmarkProfile(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	if _, err := s.PatchProfile(ctx, "auth0|alice", map[string]any{"plan": "gold", "authorization": map[string]any{"groups": []any{"a", "b"}}}, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := s.IOStats()
	for b.Loop() {
		if _, err := s.Profile(ctx, "auth0|alice"); err != nil {
			b.Fatal(err)
		}
	}
	reportIO(b, s, before)
}

// BenchmarkPatchProfile is a changed patch from one caller at a time:
// every patch waits for its own journal sync (the worst case of group
// commit).
func BenchmarkPatchProfile(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	defer s.Close()
	b.ReportAllocs()
	before := s.IOStats()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.PatchProfile(ctx, fmt.Sprintf("auth0|user-%d", i%100), map[string]any{"logins": i}, nil); err != nil {
			b.Fatal(err)
		}
	}
	reportIO(b, s, before)
}

// BenchmarkPatchProfileParallel is changed patches from 64 concurrent
// logins (GOMAXPROCS×32 goroutines): they share syncs.
func BenchmarkPatchProfileParallel(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	defer s.Close()
	b.ReportAllocs()
	b.SetParallelism(32)
	var n atomic.Int64
	before := s.IOStats()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := s.PatchProfile(ctx, fmt.Sprintf("auth0|user-%d", i%1000), map[string]any{"logins": i}, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportIO(b, s, before)
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
	before := s.IOStats()
	for b.Loop() {
		if _, err := s.PatchProfile(ctx, "auth0|alice", patch, nil); err != nil {
			b.Fatal(err)
		}
	}
	reportIO(b, s, before)
}

// BenchmarkLoginUnchanged is the store's part of a login whose profile
// does not change: resolve, read the profile, persist the same
// authorization. fsops/op and syncs/op are 0 (a stat of HEAD once per
// RefreshInterval aside).
func BenchmarkLoginUnchanged(b *testing.B) {
	ctx := context.Background()
	s := open(b, b.TempDir())
	defer s.Close()
	if _, err := s.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authzgen.Generate(authzgen.BenchSpec(1000))}); err != nil {
		b.Fatal(err)
	}
	q := authzgen.BenchQuery()
	pol, err := s.ResolvePolicy(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	patch := map[string]any{"authorization": map[string]any{"clients": map[string]any{q.ClientID: map[string]any{"groups": pol.Groups, "roles": pol.Roles}}}}
	if _, err := s.PatchProfile(ctx, q.UserID, patch, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := s.IOStats()
	for b.Loop() {
		pol, err := s.ResolvePolicy(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Profile(ctx, q.UserID); err != nil {
			b.Fatal(err)
		}
		patch := map[string]any{"authorization": map[string]any{"clients": map[string]any{q.ClientID: map[string]any{"groups": pol.Groups, "roles": pol.Roles}}}}
		if _, err := s.PatchProfile(ctx, q.UserID, patch, nil); err != nil {
			b.Fatal(err)
		}
	}
	reportIO(b, s, before)
}
