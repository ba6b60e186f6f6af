package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/bustest"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// BenchmarkIntrospectionPath measures what the outbox costs a new node's
// registration on PostgreSQL, one decision at a time: "direct" is the
// path before the outbox (the upsert as its own statement, then the two
// events published); "outbox" is the path now (one transaction with the
// upsert and the record, then the relay: read the record, publish,
// remove it). Both publish to an in-process recorder, so the difference
// is the database work. Run both in one invocation and compare.
func BenchmarkIntrospectionPath(b *testing.B) {
	db := newTestDB(b)
	ctx := context.Background()
	store := db.store(b)
	up, _ := db.effects(b, EffectConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	decision := func(node uuid.UUID) reducer.Decision {
		p := registration.Projection{EntityID: node, Domain: registration.DefaultDomain, State: registration.StateAwaitingAck,
			NodeType: "effect", NodeVersion: "1.0.0", AckDeadline: t0.Add(30 * time.Second), RegisteredAt: t0, UpdatedAt: t0, Generation: 1}
		return reducer.Decision{
			Intents: []intent.Intent{{Type: registration.IntentUpsert, Target: node.String(),
				Payload: &registration.UpsertRegistration{Projection: p}}},
			Events: []reducer.Event{
				{Topic: registration.TopicInitiated, Type: registration.EventInitiated, EntityID: node, Payload: &registration.Initiated{}},
				{Topic: registration.TopicAccepted, Type: registration.EventAccepted, EntityID: node, Payload: &registration.Accepted{AckDeadline: p.AckDeadline}},
			},
		}
	}
	cause := func(node uuid.UUID) *bus.Envelope {
		return &bus.Envelope{EnvelopeID: uuid.NewSHA1(node, []byte("cause")), EnvelopeTimestamp: t0}
	}
	b.Run("direct", func(b *testing.B) {
		rec := &bustest.Recorder{}
		a, err := dispatch.New(dispatch.Config{Publisher: rec, Executor: intent.NewExecutor(), Outbox: store})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			node := uuid.New()
			d := decision(node)
			if _, err := up.Execute(ctx, d.Intents[0]); err != nil {
				b.Fatal(err)
			}
			msgs := make([]*bus.Message, len(d.Events))
			for i, ev := range d.Events {
				env, err := a.Envelope(cause(node), i, ev)
				if err != nil {
					b.Fatal(err)
				}
				if msgs[i], err = bus.EnvelopeMessage(ev.Topic, env, bus.WithKey(ev.PartitionKey())); err != nil {
					b.Fatal(err)
				}
			}
			if err := rec.Publish(ctx, msgs...); err != nil {
				b.Fatal(err)
			}
			rec.Reset()
		}
	})
	b.Run("outbox", func(b *testing.B) {
		rec := &bustest.Recorder{}
		a, err := dispatch.New(dispatch.Config{Publisher: rec, Executor: intent.NewExecutor(), Outbox: store})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			node := uuid.New()
			p, err := a.Prepare(context.Background(), cause(node), node, decision(node))
			if err != nil {
				b.Fatal(err)
			}
			res, err := a.Apply(ctx, []dispatch.Prepared{p})
			if err != nil || res[0].Status != dispatch.WriteCommitted {
				b.Fatalf("apply: %+v, %v", res, err)
			}
			if r, err := a.Relay(ctx, []uuid.UUID{node}); err != nil || r.Events != 2 {
				b.Fatalf("relay: %+v, %v", r, err)
			}
			rec.Reset()
		}
	})
}
