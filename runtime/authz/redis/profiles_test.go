package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// writeCalls sums the server's calls of the commands a profile write uses.
func writeCalls(t testing.TB, c goredis.UniversalClient) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(info, "\n") {
		for _, cmd := range []string{"set", "evalsha", "eval", "exec", "multi", "watch", "sadd"} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
				v, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
				n += v
			}
		}
	}
	return n
}

func profileStore(t testing.TB) (*redis.Store, goredis.UniversalClient) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, srv.Addr())
	s, err := redis.New(context.Background(), c, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

// TestUnchangedPatchWritesNothing: a patch that changes nothing (the
// common login) sends no write, and a user with nothing to keep gets no
// key (issue 14 item 12, issue 15).
func TestUnchangedPatchWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, c := profileStore(t)
	patch := map[string]any{"authorization": map[string]any{"groups": []string{"Eng"}, "roles": []string{}}, "n": 1}
	if _, err := s.PatchProfile(ctx, "auth0|alice", patch, nil); err != nil {
		t.Fatal(err)
	}
	before := writeCalls(t, c)
	for range 20 {
		p, err := s.PatchProfile(ctx, "auth0|alice", patch, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.AppMetadata["n"] != float64(1) {
			t.Fatalf("profile: %+v", p)
		}
	}
	if after := writeCalls(t, c); after != before {
		t.Fatalf("20 unchanged patches sent %d write commands", after-before)
	}
	if _, err := s.PatchProfile(ctx, "auth0|stranger", map[string]any{"x": nil}, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Exists(ctx, "claimsmith:{authz}:prof:auth0|stranger").Result(); n != 0 || writeCalls(t, c) != before {
		t.Fatal("a user with nothing to keep got a profile key")
	}
	// A changed patch still writes (and keeps the other keys).
	p, err := s.PatchProfile(ctx, "auth0|alice", map[string]any{"n": 2}, nil)
	if err != nil || fmt.Sprint(p.AppMetadata["n"]) != "2" || p.AppMetadata["authorization"] == nil {
		t.Fatalf("changed patch: %+v, %v", p, err)
	}
	if writeCalls(t, c) == before {
		t.Fatal("a changed patch wrote nothing")
	}
}

// BenchmarkPatchProfileUnchanged is the common login's persist: one GET.
func BenchmarkPatchProfileUnchanged(b *testing.B) {
	ctx := context.Background()
	s, _ := profileStore(b)
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

// BenchmarkPatchProfile is a changed patch: GET and one compare-and-set.
func BenchmarkPatchProfile(b *testing.B) {
	ctx := context.Background()
	s, _ := profileStore(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.PatchProfile(ctx, fmt.Sprintf("auth0|user-%d", i%100), map[string]any{"logins": i}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
