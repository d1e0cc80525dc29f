package redis

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
)

// Config is the `redis:` section of the configuration. One shape covers a
// single node (one address), Sentinel (master_name set; addrs are the
// sentinels) and Cluster (several addresses, no master_name), as go-redis'
// universal client decides.
//
//	redis:
//	  addrs: ["redis-1:6379"]      # one node; or sentinels; or cluster seeds
//	  master_name: ""              # Sentinel master name
//	  username: ""                 # ACL user; $CLAIMSMITH_REDIS_USERNAME overrides
//	  # password only from $CLAIMSMITH_REDIS_PASSWORD (never in the file)
//	  db: 0                        # single node and Sentinel only
//	  tls: false
//	  tls_ca_file: ""              # PEM bundle; system roots when empty
//	  tls_server_name: ""
//	  key_prefix: "claimsmith:"
//	  dial_timeout: 1s
//	  read_timeout: 500ms
//	  write_timeout: 500ms
type Config struct {
	Addrs         []string      `yaml:"addrs"`
	MasterName    string        `yaml:"master_name"`
	Username      string        `yaml:"username"`
	Password      string        `yaml:"-"`
	DB            int           `yaml:"db"`
	TLS           bool          `yaml:"tls"`
	TLSCAFile     string        `yaml:"tls_ca_file"`
	TLSServerName string        `yaml:"tls_server_name"`
	KeyPrefix     string        `yaml:"key_prefix"`
	DialTimeout   time.Duration `yaml:"dial_timeout"`
	ReadTimeout   time.Duration `yaml:"read_timeout"`
	WriteTimeout  time.Duration `yaml:"write_timeout"`
}

// Environment variables holding the credentials.
const (
	EnvUsername = "CLAIMSMITH_REDIS_USERNAME"
	EnvPassword = "CLAIMSMITH_REDIS_PASSWORD"
)

// FromEnv fills Username and Password from the environment (getenv is
// os.Getenv in production, a map in tests).
func (c Config) FromEnv(getenv func(string) string) Config {
	if v := getenv(EnvUsername); v != "" {
		c.Username = v
	}
	if v := getenv(EnvPassword); v != "" {
		c.Password = v
	}
	return c
}

// NewClient validates c and returns the universal client. It does not dial.
func (c Config) NewClient() (goredis.UniversalClient, error) {
	if len(c.Addrs) == 0 {
		return nil, &runtime.ValidationError{Entity: "redis", Field: "addrs", Reason: "is empty: give one address, the sentinels, or cluster seed nodes"}
	}
	for i, a := range c.Addrs {
		if a == "" {
			return nil, &runtime.ValidationError{Entity: "redis", Field: fmt.Sprintf("addrs[%d]", i), Reason: "is empty"}
		}
	}
	if c.DB != 0 && c.MasterName == "" && len(c.Addrs) > 1 {
		return nil, &runtime.ValidationError{Entity: "redis", Field: "db", Reason: "must be 0 with Redis Cluster"}
	}
	opt := &goredis.UniversalOptions{
		Addrs:        c.Addrs,
		MasterName:   c.MasterName,
		Username:     c.Username,
		Password:     c.Password,
		DB:           c.DB,
		DialTimeout:  orDefault(c.DialTimeout, time.Second),
		ReadTimeout:  orDefault(c.ReadTimeout, 500*time.Millisecond),
		WriteTimeout: orDefault(c.WriteTimeout, 500*time.Millisecond),
		// Login budgets are contexts: honour their deadlines on every
		// command, or a hung server would hold a login for ReadTimeout.
		ContextTimeoutEnabled: true,
		// Sentinels usually share the data nodes' credentials.
		SentinelUsername: c.Username,
		SentinelPassword: c.Password,
	}
	if c.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, &runtime.ValidationError{Entity: "redis", Field: "tls_ca_file", Reason: err.Error()}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, &runtime.ValidationError{Entity: "redis", Field: "tls_ca_file", Reason: fmt.Sprintf("%s holds no PEM certificate", c.TLSCAFile)}
			}
			tc.RootCAs = pool
		}
		opt.TLSConfig = tc
	}
	return goredis.NewUniversalClient(opt), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
