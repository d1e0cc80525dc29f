package setup

import (
	"log/slog"
	"os"
	"time"
)

// Env is what a command brings to the configuration: where the embedded
// store's data dir is, the environment secrets are read from, the logger
// and the clock. Zero fields get defaults: data dir "data", os.Getenv,
// a logger that discards, time.Now.
type Env struct {
	DataDir string
	Getenv  func(string) string
	Log     *slog.Logger
	Now     func() time.Time
}

func (e Env) withDefaults() Env {
	if e.DataDir == "" {
		e.DataDir = "data"
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	return e
}
