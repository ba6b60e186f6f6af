package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

// Prepared is a decision made ready to apply: everything it needs is
// encoded and checked, so that applying it can only fail for reasons of the
// environment.
type Prepared struct {
	// Write is the decision's atomic write for [Outbox.Commit].
	Write Write
	// Volatile holds the decision's volatile intents when it takes the fast
	// path (no events, and no intent outside the store that is not
	// volatile); they run before the write, with no record.
	Volatile []intent.Intent
	// Events counts the decision's events.
	Events int

	// ctx is the context Prepare was given: the cause's, in which the
	// volatile intents and the commit are reported to the hooks.
	ctx context.Context
}

// context returns the context the decision was prepared in, or def.
func (p *Prepared) context(def context.Context) context.Context {
	if p.ctx != nil {
		return p.ctx
	}
	return def
}

// PrepareError says why a decision cannot be applied: an event that does
// not encode or does not fit the bus, an intent payload that does not
// encode. It is a fault of the input that was decided, never of the
// environment: the runtime dead-letters the input with it.
type PrepareError struct {
	// What names the part that failed, e.g. "event 1 (NodeRegistrationAccepted)".
	What string
	// Err is the reason.
	Err error
}

func (e *PrepareError) Error() string {
	return "registrar/dispatch: prepare decision: " + e.What + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *PrepareError) Unwrap() error { return e.Err }

// Prepare makes decision d, caused by the envelope cause about entity, ready
// to apply: it splits the intents into the store's own (the write) and the
// rest, encodes every event as the message the relay will publish and
// checks it against the bus's size limit, and encodes the payload of every
// intent that goes into the record. Any failure is a [*PrepareError].
//
// A decision without events whose intents outside the store are all
// volatile ([intent.Volatile]) takes the fast path: its volatile intents run
// before the write, and it has no record. Otherwise the store's intents are
// the atomic write and every other intent, in declared order, goes into the
// record with the events, to run after the write.
//
// ctx is the context of the cause's handling. With a [hooks.Propagator]
// installed, its trace context is written into the record
// ([Record.Trace]) and into every event (its headers, and its envelope's
// trace_id and span_id), so that what the decision causes continues the
// cause's trace.
func (a *Applier) Prepare(ctx context.Context, cause *bus.Envelope, entity uuid.UUID, d reducer.Decision) (Prepared, error) {
	p := Prepared{Write: Write{EntityID: entity}, Events: len(d.Events)}
	if a.hooks != nil {
		p.ctx = ctx
	}
	var external []intent.Intent
	fast := len(d.Events) == 0
	for _, in := range d.Intents {
		if a.outbox.Owns(in.Type) {
			p.Write.Intents = append(p.Write.Intents, in)
			continue
		}
		if _, ok := a.exec.Effect(in.Type); !ok {
			return Prepared{}, &PrepareError{What: "intent " + in.Type, Err: fmt.Errorf("%w for intent type %q", intent.ErrNoEffect, in.Type)}
		}
		external = append(external, in)
		fast = fast && a.exec.IsVolatile(in.Type)
	}
	if fast {
		p.Volatile = external
		return p, nil
	}
	rec := &Record{EntityID: entity, Cause: cause.EnvelopeID}
	if a.hooks.Propagates() {
		rec.Trace = map[string]string{}
		a.hooks.Inject(ctx, rec.Trace, nil)
	}
	for i, in := range external {
		raw, err := json.Marshal(in.Payload)
		if err != nil {
			return Prepared{}, &PrepareError{What: fmt.Sprintf("intent %d (%s)", i, in.Type), Err: err}
		}
		rec.Intents = append(rec.Intents, RecordedIntent{Type: in.Type, Target: in.Target, CorrelationID: in.CorrelationID, Payload: raw})
	}
	for i, ev := range d.Events {
		m, err := a.eventMessage(ctx, cause, i, ev)
		if err != nil {
			return Prepared{}, &PrepareError{What: fmt.Sprintf("event %d (%s)", i, ev.Type), Err: err}
		}
		rec.Messages = append(rec.Messages, RecordedMessage{Topic: m.Topic, Key: m.Key, Value: m.Value, Headers: m.Headers})
	}
	p.Write.Record = rec
	return p, nil
}

// eventMessage encodes event i of a decision caused by cause and checks its
// size: an event too large for the bus is an error wrapping
// [bus.ErrMessageTooLarge]. A tombstone ([reducer.Event.Tombstone]) is the
// message with the event's partition key and a nil value; it needs a key.
func (a *Applier) eventMessage(ctx context.Context, cause *bus.Envelope, i int, ev reducer.Event) (*bus.Message, error) {
	if ev.Tombstone {
		if ev.Topic == "" {
			return nil, errors.New("tombstone has no topic")
		}
		key := ev.PartitionKey()
		if key == nil {
			return nil, errors.New("tombstone has no key: entity, node and correlation ids are all zero")
		}
		return &bus.Message{Topic: ev.Topic, Key: key}, nil
	}
	env, err := a.Envelope(cause, i, ev)
	if err != nil {
		return nil, err
	}
	var h bus.Headers
	if a.hooks.Propagates() {
		h = bus.Headers{}
		a.hooks.Inject(ctx, h, env)
	}
	m, err := bus.EnvelopeMessage(ev.Topic, env, bus.WithKey(ev.PartitionKey()), bus.WithHeaders(h))
	if err != nil {
		return nil, err
	}
	if err := bus.CheckSize(m, a.sizeLimit()); err != nil {
		return nil, err
	}
	return m, nil
}

// sizeLimit returns the bus's message size limit, or 0 for none.
func (a *Applier) sizeLimit() int {
	if sl, ok := a.pub.(bus.SizeLimited); ok {
		return sl.MaxMessageBytes()
	}
	return 0
}
