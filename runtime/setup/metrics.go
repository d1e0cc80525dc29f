package setup

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// newServeMetrics creates the server's own Prometheus registry (never the global
// default one) with the Go runtime and process collectors and claimsmith's
// series (see hooks.Metrics).
func newServeMetrics() (*prometheus.Registry, *hooks.Metrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, nil, err
	}
	m, err := hooks.NewMetrics(reg)
	if err != nil {
		return nil, nil, err
	}
	return reg, m, nil
}

// meteredStore counts the login path's store errors by operation
// (claimsmith_store_errors_total{op}). Not found is an answer, not an error;
// nor is the caller giving up (context canceled).
// Degraded answers (runtime.ErrDegraded) are counted both as errors and in
// claimsmith_store_degraded_total{op}; the profile patch follows the
// store's availability policy (patchProfile).
type meteredStore struct {
	st                                           PipelineStore
	resolve, application, snapshot, profile, put prometheus.Counter
	degraded                                     degradedCounters
}

func newMeteredStore(st PipelineStore, m *hooks.Metrics, d degradedCounters) *meteredStore {
	return &meteredStore{st: st,
		resolve: m.StoreErrors("resolve_policy"), application: m.StoreErrors("application"),
		snapshot: m.StoreErrors("snapshot"), profile: m.StoreErrors("profile"), put: m.StoreErrors("patch_profile"),
		degraded: d}
}

func countStoreError(c prometheus.Counter, err error) {
	if err != nil && !errors.Is(err, runtime.ErrNotFound) && !errors.Is(err, context.Canceled) {
		c.Inc()
	}
}

func (s *meteredStore) ResolvePolicy(ctx context.Context, q authz.PolicyQuery) (authz.Policy, error) {
	p, err := s.st.ResolvePolicy(ctx, q)
	countStoreError(s.resolve, err)
	return p, err
}

func (s *meteredStore) Application(ctx context.Context, clientID string) (authz.Application, error) {
	a, err := s.st.Application(ctx, clientID)
	countStoreError(s.application, err)
	return a, err
}

// Records counts under the "snapshot" label the settings read used before
// it became a narrow read, so dashboards keep working.
func (s *meteredStore) Records(ctx context.Context, fp authz.Footprint) (*authz.Document, uint64, error) {
	d, rev, err := s.st.Records(ctx, fp)
	countStoreError(s.snapshot, err)
	return d, rev, err
}

func (s *meteredStore) Profile(ctx context.Context, userID string) (runtime.Profile, error) {
	p, err := s.st.Profile(ctx, userID)
	countStoreError(s.profile, err)
	if isDegraded(err) {
		s.degraded.profile.Inc()
	}
	return p, err
}

func (s *meteredStore) PatchProfile(ctx context.Context, userID string, app, user map[string]any) (runtime.Profile, error) {
	p, err := patchProfile(ctx, s.st, userID, app, user)
	countStoreError(s.put, err)
	if isDegraded(err) {
		s.degraded.patch.Inc()
	}
	return p, err
}
