package cache

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are resolved to concrete counters once, so the login path pays an
// atomic add, not a label lookup.
type metrics struct {
	nearHit, redisHit, miss                  prometheus.Counter
	errGet, errSet, errPublish, errSubscribe prometheus.Counter
	errRevision, errDecode                   prometheus.Counter
	invalidations                            prometheus.Counter
	degraded                                 prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "claimsmith_policy_cache_lookups_total",
		Help: "Policy lookups by where they were answered: near (in-process), redis, or miss (resolved by the store).",
	}, []string{"result"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "claimsmith_policy_cache_errors_total",
		Help: "Policy cache Redis errors by operation; logins fall back to the store.",
	}, []string{"op"})
	inv := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "claimsmith_policy_cache_revision_changes_total",
		Help: "Times this node learned of a newer store revision (local write, invalidation message or resync).",
	})
	deg := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "claimsmith_policy_cache_degraded",
		Help: "1 while the Redis policy cache is unavailable and logins are served from the store.",
	})
	if reg != nil {
		// A second cache on the same registry (tests, several stores) shares
		// the collectors already registered.
		var err error
		if lookups, err = register(reg, lookups); err != nil {
			return nil, err
		}
		if errs, err = register(reg, errs); err != nil {
			return nil, err
		}
		if inv, err = register(reg, inv); err != nil {
			return nil, err
		}
		if deg, err = register(reg, deg); err != nil {
			return nil, err
		}
	}
	return &metrics{
		nearHit: lookups.WithLabelValues("near"), redisHit: lookups.WithLabelValues("redis"), miss: lookups.WithLabelValues("miss"),
		errGet: errs.WithLabelValues("get"), errSet: errs.WithLabelValues("set"), errPublish: errs.WithLabelValues("publish"),
		errSubscribe: errs.WithLabelValues("subscribe"), errRevision: errs.WithLabelValues("revision"), errDecode: errs.WithLabelValues("decode"),
		invalidations: inv, degraded: deg,
	}, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
