package registrar

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer"
)

// The budget of WARN records for warned no-ops ([reducer.Decision].Warn),
// per Runtime: a bucket of warnBurst records that refills one every
// warnRefill (ten a minute). A node heartbeating while the orchestrator
// does not know it sends a heartbeat every few seconds; the bucket keeps
// such a node, or a thousand of them, from flooding the log, while
// [Stats].NoOpsWarned counts every one. The next record that is logged
// says how many were suppressed before it.
const (
	warnBurst  = 10
	warnRefill = 6 * time.Second
)

// warnLimiter is a token bucket; its zero value is full.
type warnLimiter struct {
	mu         sync.Mutex
	started    bool
	tokens     float64
	last       time.Time
	suppressed int64
}

// take reports whether a record may be logged at now, and how many were
// suppressed since the last one that was.
func (l *warnLimiter) take(now time.Time) (ok bool, suppressed int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.started, l.tokens, l.last = true, warnBurst, now
	}
	if el := now.Sub(l.last); el > 0 {
		l.tokens += float64(el) / float64(warnRefill)
		if l.tokens > warnBurst {
			l.tokens = warnBurst
		}
		l.last = now
	}
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// noop counts and logs the no-op decision d for in, read from msg: at
// DEBUG, or, when d.Warn, at WARN (rate-limited, see warnBurst) with the
// message's topic, partition and offset.
func (r *Runtime[S]) noop(ctx context.Context, msg *bus.Message, in *reducer.Input, d *reducer.Decision) {
	r.stats.noops.Add(1)
	if !d.Warn {
		if r.log.Enabled(ctx, slog.LevelDebug) {
			r.log.DebugContext(ctx, "no-op", slog.String("kind", in.Kind),
				slog.String("entity_id", in.EntityID.String()), slog.String("reason", d.Reason))
		}
		return
	}
	r.stats.noopsWarned.Add(1)
	ok, suppressed := r.warnLimit.take(r.cfg.clock())
	if !ok || !r.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	attrs := []slog.Attr{
		slog.String("kind", in.Kind), slog.String("node_id", in.EntityID.String()), slog.String("reason", d.Reason),
		slog.String("topic", msg.Topic), slog.Int("partition", int(msg.Partition)), slog.Int64("offset", msg.Offset),
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	r.log.LogAttrs(ctx, slog.LevelWarn, "no-op: the sender and the orchestrator disagree about the node", attrs...)
}
