package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

// Publisher is the part of [bus.EventBus] the applier uses.
type Publisher interface {
	PublishEnvelope(ctx context.Context, topic string, env *bus.Envelope, opts ...bus.PublishOption) error
}

// Executor is the part of [intent.Executor] the applier uses.
type Executor interface {
	ExecuteAll(ctx context.Context, ins []intent.Intent) ([]intent.Result, error)
}

// Config configures a [ResultApplier].
type Config struct {
	// SourceTool is written as source_tool of every output envelope, e.g.
	// the contract's name. Optional.
	SourceTool string
	// Logger receives a debug line per skipped intent; nil means silent.
	Logger *slog.Logger
}

// ResultApplier applies decisions. It is safe for concurrent use.
type ResultApplier struct {
	pub  Publisher
	exec Executor
	cfg  Config
	log  *slog.Logger
}

// NewResultApplier returns an applier that executes intents with exec and
// publishes events with pub.
func NewResultApplier(pub Publisher, exec Executor, cfg Config) (*ResultApplier, error) {
	if pub == nil {
		return nil, errors.New("registrar/dispatch: nil publisher")
	}
	if exec == nil {
		return nil, errors.New("registrar/dispatch: nil executor")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ResultApplier{pub: pub, exec: exec, cfg: cfg, log: log}, nil
}

// Outcome reports what Apply did.
type Outcome struct {
	// Results holds one result per executed intent.
	Results []intent.Result
	// Published counts the events published.
	Published int
}

// Skipped counts the intents that changed nothing (skipped or conflict).
func (o Outcome) Skipped() int {
	n := 0
	for _, r := range o.Results {
		if r.Status != intent.Applied {
			n++
		}
	}
	return n
}

// ErrConflict is wrapped by the error Apply returns when an intent reported
// [intent.Conflict]: the decision was made on state that moved meanwhile.
// Nothing after that intent was executed and no event was published; the
// caller decides again against the current state.
var ErrConflict = errors.New("registrar/dispatch: state changed under the decision")

// Apply executes d's intents in order, then publishes d's events in order.
// If an intent reports [intent.Conflict], Apply returns an error wrapping
// [ErrConflict] and publishes nothing. If an intent fails, nothing is published and the error (an
// [*intent.ExecError]) says which intent; if a publish fails, the events
// before it were published. In both cases the caller retries the whole
// decision, which is safe: effects are idempotent and the republished
// envelopes are identical.
func (a *ResultApplier) Apply(ctx context.Context, cause *bus.Envelope, d reducer.Decision) (Outcome, error) {
	var out Outcome
	if len(d.Intents) > 0 {
		res, err := a.exec.ExecuteAll(ctx, d.Intents)
		out.Results = res
		if err != nil {
			return out, fmt.Errorf("registrar/dispatch: apply decision for envelope %s: %w", cause.EnvelopeID, err)
		}
		for i, r := range res {
			if r.Status == intent.Applied {
				continue
			}
			in := d.Intents[i]
			a.log.DebugContext(ctx, "intent "+r.Status.String(),
				slog.String("intent_type", in.Type), slog.String("target", in.Target),
				slog.String("reason", r.Reason), slog.String("correlation_id", in.CorrelationID.String()))
			if r.Status == intent.Conflict {
				return out, fmt.Errorf("%w: intent %d (%s %s): %s", ErrConflict, i, in.Type, in.Target, r.Reason)
			}
		}
	}
	for i, ev := range d.Events {
		env, err := a.Envelope(cause, i, ev)
		if err != nil {
			return out, err
		}
		if err := a.pub.PublishEnvelope(ctx, ev.Topic, env, bus.WithKey(ev.PartitionKey())); err != nil {
			return out, fmt.Errorf("registrar/dispatch: publish %s %s to %s: %w", ev.Type, env.EnvelopeID, ev.Topic, err)
		}
		out.Published++
	}
	return out, nil
}

// Envelope returns the output envelope of event i of a decision caused by
// cause: envelope id [EventID](cause, i), the cause's timestamp, the cause's
// correlation id (else the event's, else the cause's envelope id), the
// event's type and its JSON payload.
func (a *ResultApplier) Envelope(cause *bus.Envelope, i int, ev reducer.Event) (*bus.Envelope, error) {
	payload, err := json.Marshal(ev.Payload)
	if err != nil {
		return nil, fmt.Errorf("registrar/dispatch: encode %s payload: %w", ev.Type, err)
	}
	corr := cause.CorrelationID
	if corr == uuid.Nil {
		corr = ev.CorrelationID
	}
	if corr == uuid.Nil {
		corr = cause.EnvelopeID
	}
	return &bus.Envelope{
		EnvelopeID:        EventID(cause.EnvelopeID, i),
		EnvelopeTimestamp: cause.EnvelopeTimestamp,
		CorrelationID:     corr,
		EventType:         ev.Type,
		SourceTool:        a.cfg.SourceTool,
		Priority:          bus.DefaultPriority,
		OnexVersion:       bus.DefaultVersion,
		EnvelopeVersion:   bus.DefaultEnvelopeVersion,
		Payload:           payload,
	}, nil
}

// EventID returns the envelope id of event i of the decision caused by the
// envelope with id cause: the UUIDv5 (SHA-1) of the name "event/<i>" in the
// namespace cause.
func EventID(cause uuid.UUID, i int) uuid.UUID {
	var buf [32]byte
	name := strconv.AppendInt(append(buf[:0], "event/"...), int64(i), 10)
	return uuid.NewSHA1(cause, name)
}
