package kafka

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// demoteHandler moves the library's chatter one level down: info becomes
// debug and debug goes below debug; warnings and errors keep their level.
type demoteHandler struct{ h slog.Handler }

func demote(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return l - 4
	}
	return l
}

func (d demoteHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, demote(l))
}

func (d demoteHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	return d.h.Handle(ctx, r)
}

func (d demoteHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return demoteHandler{d.h.WithAttrs(as)}
}

func (d demoteHandler) WithGroup(name string) slog.Handler {
	return demoteHandler{d.h.WithGroup(name)}
}

// registerGuard stands between kprom and the caller's registerer. kprom
// registers with MustRegister inside kgo.NewClient, where a collision
// would panic; the guard records the error instead, so NewClient can
// return it, and it never unregisters a collector it failed to register
// (which would remove the other client's metrics).
type registerGuard struct {
	prometheus.Registerer
	logger    *slog.Logger
	component string

	mu     sync.Mutex
	err    error
	failed map[prometheus.Collector]struct{}
}

func (g *registerGuard) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := g.Register(c); err != nil {
			g.mu.Lock()
			if g.err == nil {
				g.logger.Error("registering kafka client metrics; component must be unique per registry",
					slog.String("component", g.component), slog.Any("error", err))
			}
			g.err = errors.Join(g.err, err)
			if g.failed == nil {
				g.failed = make(map[prometheus.Collector]struct{})
			}
			g.failed[c] = struct{}{}
			g.mu.Unlock()
		}
	}
}

func (g *registerGuard) Unregister(c prometheus.Collector) bool {
	g.mu.Lock()
	_, failed := g.failed[c]
	g.mu.Unlock()
	if failed {
		return false
	}
	return g.Registerer.Unregister(c)
}

func (g *registerGuard) error() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
