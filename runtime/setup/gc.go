package setup

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
)

// ServerConfig is the `server` section: the HTTP server (hooks.ServerConfig)
// and the process's garbage collector, which serve sets at start.
//
//	server:
//	  gogc: 400             # debug.SetGCPercent (default 400); -1: GC off (set memory_limit)
//	  memory_limit: 512MiB  # debug.SetMemoryLimit (B, KiB, MiB, GiB; 0/absent: none)
//
// A login allocates ~45 KB and keeps almost nothing, so with Go's default
// (GOGC=100) the small live heap is collected every ~60 logins. Measured
// with BenchmarkServeLoginHandlerRatio (gc-cycles/klogin, ES256, sample
// config): 17–18 cycles per 1,000 logins at 100, 7.8 at 200, 3.2–3.3 at
// 400, 1.3 at 800; 400 cuts the cycles five-fold for a heap target of a
// few tens of MB. Without gogc in the file, the GOGC environment variable
// applies, else DefaultGOGC.
type ServerConfig struct {
	hooks.ServerConfig `yaml:",inline"`
	GOGC               int    `yaml:"gogc"`
	MemoryLimit        string `yaml:"memory_limit"`
	// ReloadTimeout bounds one configuration reload (SIGHUP or POST
	// /api/reload): a build still running then is abandoned and rejected,
	// and the next reload may start. Default DefaultReloadTimeout.
	ReloadTimeout time.Duration `yaml:"reload_timeout"`
}

// DefaultReloadTimeout is server.reload_timeout's default: far above what
// reading a file and compiling its modules takes, far below "forever".
const DefaultReloadTimeout = time.Minute

// reloadTimeout is server.reload_timeout or its default.
func (s ServerConfig) reloadTimeout() time.Duration {
	if s.ReloadTimeout > 0 {
		return s.ReloadTimeout
	}
	return DefaultReloadTimeout
}

// DefaultGOGC is serve's GC percent when neither server.gogc nor $GOGC
// says otherwise.
const DefaultGOGC = 400

// validateGC checks server.gogc and server.memory_limit.
func (c *Config) validateGC() error {
	if c.Server.GOGC < -1 {
		return c.bad(keyPath{"server", "gogc"}, invalidf("is %d, must be -1 (off), 0 (default) or a percentage", c.Server.GOGC))
	}
	lim, err := parseBytes(c.Server.MemoryLimit)
	if err != nil {
		return c.bad(keyPath{"server", "memory_limit"}, invalidf("%v", err))
	}
	if c.Server.GOGC == -1 && lim == 0 {
		return c.bad(keyPath{"server", "gogc"}, invalidf("-1 (GC off) needs server.memory_limit, or the heap grows without bound"))
	}
	return nil
}

// gcSettings are the GC percent and memory limit serve applies; 0 leaves
// the runtime's value (the GOGC / GOMEMLIMIT environment variables).
func (c *Config) gcSettings(getenv func(string) string) (percent int, limit int64) {
	lim, _ := parseBytes(c.Server.MemoryLimit)
	switch {
	case c.Server.GOGC != 0:
		return c.Server.GOGC, lim
	case getenv("GOGC") != "":
		return 0, lim
	default:
		return DefaultGOGC, lim
	}
}

// applyGC sets the process's GC percent and memory limit (process-wide
// runtime settings, the same for every server built in the process).
func applyGC(c *Config, env Env) {
	percent, limit := c.gcSettings(env.Getenv)
	if percent != 0 {
		debug.SetGCPercent(percent)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	if percent != 0 || limit > 0 {
		env.Log.Debug("gc settings", slog.Int("gogc", percent), slog.Int64("memory_limit", limit))
	}
}

// parseBytes reads a size such as 512MiB, 1GiB, 64MB or 1048576 ("" is 0).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := 1.0
	num := s
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("is %q, must be a size such as 512MiB, 2GiB or a number of bytes", s)
	}
	b := v * mult
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("is %q, too large", s)
	}
	return int64(b), nil
}
