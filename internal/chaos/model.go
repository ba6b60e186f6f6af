package chaos

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/dispatch"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// decisionTime is the now the engine hands the reducer for in: the
// Runtime's clock (registrar.WithClock), which the harness fixes at clock
// ([Clock]). The registration reducer decides node messages at their own
// envelope timestamps and timeout checks at now, so the model passes the
// same now and lets the reducer choose, as the engine does.
func decisionTime(_ reducer.Input, clock time.Time) time.Time {
	return clock
}

// Cause locates an input in the log.
type Cause struct {
	Entity     uuid.UUID
	Kind       string
	EnvelopeID uuid.UUID
	Time       time.Time // the envelope's timestamp
	Topic      string
	Partition  int32
	Offset     int64
}

func (c *Cause) String() string {
	return fmt.Sprintf("%s %s (envelope %s, %s/%d@%d)", c.Kind, c.Time.UTC().Format(time.RFC3339Nano),
		c.EnvelopeID, c.Topic, c.Partition, c.Offset)
}

// ExpectedEvent is an event that the serial model publishes.
type ExpectedEvent struct {
	Topic   string
	Type    string
	ID      uuid.UUID // dispatch.EventID of the cause's envelope id and the event's index
	Payload []byte    // the JSON of the event's payload
	Cause   *Cause
}

// Model is one serial run of the registration reducer over every entity's
// inputs, in partition order: what an engine that keeps its guarantees ends
// with, whatever faults it met.
type Model struct {
	// Events holds each entity's events in the order it decided them.
	Events map[uuid.UUID][]ExpectedEvent
	// Projections holds each entity's projection; an entity without one
	// is absent.
	Projections map[uuid.UUID]*registration.Projection
	// Decided counts the inputs the model ran, and Skipped the committed
	// poison messages it left out.
	Decided, Skipped int
	// Uncommitted holds the entities with inputs after their partition's
	// committed offset, which the model left out, and the first of them.
	Uncommitted map[uuid.UUID]*Cause
}

// RunModel runs red over the input messages, topic by topic and partition by
// partition in offset order, as the memory store applies decisions
// (registration.Reducer.Decide, then Evolve: registration.ApplyUpsert and
// ApplyUpdate). Messages whose identity is among poisons are left out, and
// so is every message at or after committed(topic, partition). A message
// that is no poison yet does not decode is the harness's own error.
func RunModel(red *registration.Reducer, inputs map[string][][]*bus.Message, poisons map[Identity]*Input, committed func(topic string, partition int32) int64) (*Model, error) {
	m := &Model{
		Events:      map[uuid.UUID][]ExpectedEvent{},
		Projections: map[uuid.UUID]*registration.Projection{},
		Uncommitted: map[uuid.UUID]*Cause{},
	}
	for topic, parts := range inputs {
		for p, msgs := range parts {
			limit := committed(topic, int32(p))
			for _, msg := range msgs {
				entity, _ := uuid.ParseBytes(msg.Key)
				if _, poison := poisons[IdentityOf(msg.Topic, msg.Key, msg.Value)]; poison {
					if msg.Offset < limit {
						m.Skipped++
					}
					continue
				}
				env, err := bus.DecodeEnvelope(msg.Value)
				if err != nil {
					return nil, fmt.Errorf("chaos: model: input %s/%d@%d is no poison but does not decode: %w", msg.Topic, p, msg.Offset, err)
				}
				in, err := red.Decode(msg.Topic, env)
				if err != nil {
					return nil, fmt.Errorf("chaos: model: input %s/%d@%d is no poison but does not decode: %w", msg.Topic, p, msg.Offset, err)
				}
				in.Envelope = env
				cause := &Cause{Entity: in.EntityID, Kind: in.Kind, EnvelopeID: env.EnvelopeID, Time: env.EnvelopeTimestamp,
					Topic: msg.Topic, Partition: int32(p), Offset: msg.Offset}
				if in.EntityID != entity {
					return nil, fmt.Errorf("chaos: model: input %s is keyed %q, not by its entity", cause, msg.Key)
				}
				if msg.Offset >= limit {
					if m.Uncommitted[in.EntityID] == nil {
						m.Uncommitted[in.EntityID] = cause
					}
					continue
				}
				state := m.Projections[in.EntityID]
				d := red.Decide(state, in, decisionTime(in, Clock))
				for i, ev := range d.Events {
					payload, err := json.Marshal(ev.Payload)
					if err != nil {
						return nil, fmt.Errorf("chaos: model: encode %s of %s: %w", ev.Type, cause, err)
					}
					m.Events[in.EntityID] = append(m.Events[in.EntityID], ExpectedEvent{
						Topic: ev.Topic, Type: ev.Type, ID: dispatch.EventID(env.EnvelopeID, i), Payload: payload, Cause: cause,
					})
				}
				if next := red.Evolve(state, in, d); next != nil {
					m.Projections[in.EntityID] = next
				}
				m.Decided++
			}
		}
	}
	return m, nil
}
