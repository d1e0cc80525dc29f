package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

func newClient(t testing.TB, addrs ...string) goredis.UniversalClient {
	t.Helper()
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: addrs, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConformance runs the shared suite; every store gets its own hash tag
// on one server, which also shows tags isolate stores.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := newClient(t, srv.Addr())
	n := 0
	authztest.Run(t, func(t *testing.T) authz.Store {
		n++
		s, err := redis.New(context.Background(), c, redis.Options{Tag: "conf" + string(rune('a'+n%26)) + time.Now().Format("150405.000000")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConformanceCluster runs the suite on a 3-node Redis Cluster: every
// transaction and script stays within the store's hash-tag slot.
func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start takes a few seconds")
	}
	cl := redistest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs()...)
	if _, ok := c.(*goredis.ClusterClient); !ok {
		t.Fatalf("universal client for %d addrs is %T, want a cluster client", len(cl.Addrs()), c)
	}
	n := 0
	authztest.Run(t, func(t *testing.T) authz.Store {
		n++
		s, err := redis.New(context.Background(), c, redis.Options{Tag: fmt.Sprintf("cl%d", n)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestSentinelConfig builds the client from the configuration shape an
// operator writes (master_name + sentinel addresses) and uses the store
// through it.
func TestSentinelConfig(t *testing.T) {
	master := redistest.Start(t, redistest.Options{Password: "s3cret"})
	sen := redistest.StartSentinel(t, master, "authz-master")
	cfg := redis.Config{Addrs: []string{sen.Addr()}, MasterName: "authz-master"}.
		FromEnv(func(k string) string { return map[string]string{redis.EnvPassword: "s3cret"}[k] })
	c, err := cfg.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	s, err := redis.New(ctx, c, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authztest.ResolutionFixture()}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range authztest.ResolutionCases()[:3] {
		got, err := s.ResolvePolicy(ctx, tc.Query)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got.Groups, got.Roles, got.Permissions) != fmt.Sprint(tc.Want.Groups, tc.Want.Roles, tc.Want.Permissions) {
			t.Fatalf("%s: got %+v want %+v", tc.Name, got, tc.Want)
		}
	}
	if rev, _ := master.Do("GET", "claimsmith:{authz}:rev"); rev != "1" {
		t.Fatalf("revision on the master = %q, want 1", rev)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  redis.Config
		want string
	}{
		{redis.Config{}, "addrs"},
		{redis.Config{Addrs: []string{"a:1", ""}}, "addrs[1]"},
		{redis.Config{Addrs: []string{"a:1", "b:1"}, DB: 2}, "db"},
		{redis.Config{Addrs: []string{"a:1"}, TLS: true, TLSCAFile: "/nonexistent/ca.pem"}, "tls_ca_file"},
	} {
		_, err := c.cfg.NewClient()
		if err == nil || !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want ErrInvalid naming %s", c.cfg, err, c.want)
		}
	}
	if _, err := redis.New(context.Background(), goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}), redis.Options{OnUnavailable: "maybe"}); err == nil || !strings.Contains(err.Error(), "on_unavailable") {
		t.Errorf("bad on_unavailable: %v", err)
	}
}
