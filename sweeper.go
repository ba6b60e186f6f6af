package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/reducer/registration"
)

// OverdueScanner is the part of registration.Store the sweeper reads: the
// overdue scans, paged with a cursor (see registration.Store).
type OverdueScanner interface {
	OverdueAcks(ctx context.Context, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error)
	OverdueLiveness(ctx context.Context, now time.Time, after registration.Overdue, limit int) ([]registration.Overdue, error)
}

// Publisher is the part of bus.EventBus the sweeper uses.
type Publisher interface {
	Publish(ctx context.Context, msgs ...*bus.Message) error
}

// SweeperConfig configures a [Sweeper].
type SweeperConfig struct {
	// Topic receives the timeout checks; it must be an input topic of the
	// runtime. Default registration.TopicTimeoutCheck.
	Topic string
	// Interval is the time between sweeps; default [DefaultSweepInterval].
	Interval time.Duration
	// Limit bounds the entities of each kind one sweep reads; default
	// [DefaultSweepLimit]. When more are overdue, the next sweep reads on
	// after the last one this sweep read, and the one after the end starts
	// again at the earliest deadline.
	Limit int
	// Resend is how long the sweeper waits before it publishes another check
	// for the same entity and deadline, if the first did not resolve it
	// (the check is still in flight, or its partition is blocked); default
	// 30 intervals. Meanwhile sweeps read past the entity.
	Resend time.Duration
	// Clock returns the sweep time; default time.Now.
	Clock func() time.Time
	// Logger; nil is silent.
	Logger *slog.Logger
	// Hooks receive every sweep ([hooks.SweepHook]) and its publish step
	// ([hooks.StepTracer]); see package hooks. A value that implements no
	// hook interface is an error.
	Hooks []hooks.Hook
}

// Sweeper defaults.
const (
	DefaultSweepInterval = time.Second
	DefaultSweepLimit    = 1000
)

// Sweeper finds entities whose ack or liveness deadline passed and publishes
// a timeout check for each, keyed by the entity, so that the partition owner
// decides it in order with the entity's other messages. Any number of
// instances may sweep: duplicate checks are no-ops. A Sweeper is not safe for
// concurrent use; run one Run or Sweep at a time.
//
// Each sweep reads up to Limit overdue entities of each kind, in deadline
// order, continuing after the last entity the previous sweep read (a
// keyset cursor per kind, held by the Sweeper) and wrapping around at the
// end. An entity that was sent a check is not sent another until Resend
// passes. So entities whose checks never resolve (behind a blocked
// partition, say) cannot starve the others: the sweeps page past them, and
// every overdue entity is read within (overdue entities / Limit) + 1
// sweeps.
type Sweeper struct {
	scan   OverdueScanner
	pub    Publisher
	cfg    SweeperConfig
	log    *slog.Logger
	hooks  *hooks.Set
	recent map[sweepKey]time.Time
	// cursor is, per kind, the last entity the previous sweep read; zero:
	// start at the earliest deadline.
	cursor [2]registration.Overdue
}

type sweepKey struct {
	id       uuid.UUID
	kind     registration.TimeoutKind
	deadline int64
}

// NewSweeper returns a sweeper that scans scan and publishes to pub.
func NewSweeper(scan OverdueScanner, pub Publisher, cfg SweeperConfig) (*Sweeper, error) {
	var errs []error
	if scan == nil {
		errs = append(errs, errors.New("nil overdue scanner"))
	}
	if pub == nil {
		errs = append(errs, errors.New("nil publisher"))
	}
	if cfg.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %v is negative", cfg.Interval))
	}
	if cfg.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %d is negative", cfg.Limit))
	}
	hs, err := hooks.New(cfg.Hooks...)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registrar: new sweeper: %w", err)
	}
	if cfg.Topic == "" {
		cfg.Topic = registration.TopicTimeoutCheck
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultSweepInterval
	}
	if cfg.Limit == 0 {
		cfg.Limit = DefaultSweepLimit
	}
	if cfg.Resend <= 0 {
		cfg.Resend = 30 * cfg.Interval
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{scan: scan, pub: pub, cfg: cfg, log: log, recent: map[sweepKey]time.Time{}, hooks: hs}, nil
}

// Run sweeps every interval until ctx ends, and returns nil then. A sweep that
// fails is logged and tried again at the next tick.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "sweep failed", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep runs one sweep as of the clock's time and returns how many timeout
// checks it published.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	if s.hooks == nil {
		n, _, err := s.sweep(ctx)
		return n, err
	}
	start := time.Now()
	n, overdue, err := s.sweep(ctx)
	s.hooks.OnSweep(ctx, hooks.Sweep{Overdue: overdue, Published: n, Duration: time.Since(start), Err: err})
	return n, err
}

// sweep is Sweep; it also returns how many overdue deadlines it read.
func (s *Sweeper) sweep(ctx context.Context) (published, overdue int, _ error) {
	now := s.cfg.Clock().UTC()
	for k, at := range s.recent {
		if now.Sub(at) >= s.cfg.Resend {
			delete(s.recent, k)
		}
	}
	var msgs []*bus.Message
	var keys []sweepKey
	var cursor [2]registration.Overdue
	for k, kind := range [...]registration.TimeoutKind{registration.TimeoutAck, registration.TimeoutLiveness} {
		scan := s.scan.OverdueAcks
		if kind == registration.TimeoutLiveness {
			scan = s.scan.OverdueLiveness
		}
		due, next, err := s.page(ctx, scan, now, s.cursor[k])
		if err != nil {
			return 0, overdue, fmt.Errorf("registrar: sweep %s deadlines: %w", kind, err)
		}
		overdue += len(due)
		cursor[k] = next
		for _, o := range due {
			k := sweepKey{o.EntityID, kind, o.Deadline.UnixNano()}
			if _, seen := s.recent[k]; seen {
				continue
			}
			m, err := TimeoutCheckMessage(s.cfg.Topic, o.EntityID, kind, o.Deadline, now)
			if err != nil {
				return 0, overdue, err
			}
			msgs = append(msgs, m)
			keys = append(keys, k)
		}
	}
	if len(msgs) == 0 {
		s.cursor = cursor
		return 0, overdue, nil
	}
	span := s.hooks.Start(ctx, hooks.Step{Kind: hooks.StepPublish, Topic: s.cfg.Topic, Count: len(msgs)})
	err := s.pub.Publish(span.Context(), msgs...)
	span.End(err, 0, 0)
	if err != nil {
		// The cursors stay: the next sweep reads the same entities.
		return 0, overdue, fmt.Errorf("registrar: publish %d timeout checks: %w", len(msgs), err)
	}
	s.cursor = cursor
	for _, k := range keys {
		s.recent[k] = now
	}
	s.log.DebugContext(ctx, "published timeout checks", slog.Int("count", len(msgs)))
	return len(msgs), overdue, nil
}

// page reads up to Limit overdue entities after the cursor after, and, if
// that reaches the end, from the earliest deadline on up to the cursor
// (wrapping around), so that a sweep reads Limit entities if that many are
// overdue, and none twice. It returns them and the cursor of the next
// sweep: the last entity read, or zero if this sweep read every overdue
// entity.
func (s *Sweeper) page(ctx context.Context, scan func(context.Context, time.Time, registration.Overdue, int) ([]registration.Overdue, error),
	now time.Time, after registration.Overdue) ([]registration.Overdue, registration.Overdue, error) {
	var start registration.Overdue
	limit := s.cfg.Limit
	due, err := scan(ctx, now, after, limit)
	switch {
	case err != nil:
		return nil, after, err
	case len(due) == limit:
		return due, due[len(due)-1], nil
	case after.EntityID == uuid.Nil && after.Deadline.IsZero():
		return due, start, nil
	}
	// The end: wrap around, and read on up to the cursor.
	rest := limit - len(due)
	wrapped, err := scan(ctx, now, start, rest)
	if err != nil {
		return nil, after, err
	}
	for i, o := range wrapped {
		if o.Compare(after) > 0 {
			// Read above already: this sweep read every overdue entity.
			return append(due, wrapped[:i]...), start, nil
		}
	}
	due = append(due, wrapped...)
	if len(wrapped) < rest {
		return due, start, nil
	}
	return due, wrapped[len(wrapped)-1], nil
}

// TimeoutCheckMessage returns the message of a timeout check of entity's
// deadline of the given kind, as of now: keyed by the entity, its envelope id
// derived from all four, so two sweeps publish distinct checks and a
// redelivery of one check is recognized.
func TimeoutCheckMessage(topic string, entity uuid.UUID, kind registration.TimeoutKind, deadline, now time.Time) (*bus.Message, error) {
	id := uuid.NewSHA1(entity, fmt.Appendf(nil, "timeout-check/%s/%d/%d", kind, deadline.UnixNano(), now.UnixNano()))
	payload, err := json.Marshal(&registration.TimeoutCheck{
		EntityID: entity, Kind: kind, DeadlineAt: deadline.UTC(), CheckedAt: now.UTC(), CorrelationID: id,
	})
	if err != nil {
		return nil, fmt.Errorf("registrar: encode timeout check: %w", err)
	}
	env := &bus.Envelope{
		EnvelopeID: id, EnvelopeTimestamp: now.UTC(), CorrelationID: id,
		EventType: registration.EventTypeTimeoutCheck, SourceTool: "registrar-sweeper", Payload: payload,
	}
	return bus.EnvelopeMessage(topic, env, bus.WithKey([]byte(entity.String())))
}
