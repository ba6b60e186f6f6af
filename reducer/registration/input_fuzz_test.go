package registration_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// FuzzDecodeInput follows a message the way the runtime does: DecodeEnvelope,
// Reducer.Decode by topic or event type, then Decide as of the envelope's
// timestamp, with the longest durations, against no projection and against
// older ones in the states that act. Every decision's events must encode
// as the output envelopes dispatch publishes (stamped with the causing
// envelope's time) and every intent payload must marshal.
func FuzzDecodeInput(f *testing.F) {
	topics := registration.DefaultTopics().Inputs()
	envelope := func(payload string) []byte {
		return []byte(`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2026-03-01T12:00:40.5+00:00","payload":` + payload + `}`)
	}
	for i, p := range []string{goodIntrospection, goodAck, goodHeartbeat, goodCheck, goodShutdown} {
		f.Add(uint8(i), envelope(p))
	}
	f.Add(uint8(2), []byte(`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"9000-01-01T00:00:00Z","event_type":"ModelNodeHeartbeatEvent",`+
		`"payload":{"node_id":"7b0c2b6e-4a44-4c61-9d5e-3f1f0d1e2a10","uptime_seconds":1,"timestamp":"9000-01-01T00:00:00Z"}}`))
	f.Add(uint8(0), []byte(`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"0001-01-01T00:00:00Z","payload":`+goodIntrospection+`}`))
	r := longestReducer(f)
	f.Fuzz(func(t *testing.T, topic uint8, data []byte) {
		env, err := bus.DecodeEnvelope(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		in, err := r.Decode(topics[int(topic)%len(topics)], env)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		now := env.EnvelopeTimestamp
		older := func(s registration.State) *registration.Projection {
			p := projection(s)
			p.UpdatedAt = bus.MinTime.Add(-time.Second)
			p.LastHeartbeatAt = time.Time{}
			p.AckDeadline, p.LivenessDeadline = bus.MinTime.Add(-time.Second), bus.MinTime.Add(-time.Second)
			return p
		}
		for _, p := range []*registration.Projection{nil, older(registration.StateAwaitingAck), older(registration.StateActive)} {
			d := r.Decide(p, in, now)
			checkDecisionMarshals(t, d)
			for i, ev := range d.Events {
				if ev.Tombstone {
					continue // published as a nil value, not an envelope
				}
				payload, err := json.Marshal(ev.Payload)
				if err != nil {
					continue // reported by checkDecisionMarshals
				}
				out := &bus.Envelope{
					EnvelopeID: uuid.NewSHA1(env.EnvelopeID, []byte{byte(i)}), EnvelopeTimestamp: env.EnvelopeTimestamp,
					CorrelationID: ev.CorrelationID, EventType: ev.Type, Payload: payload,
				}
				if _, _, err := bus.EncodeEnvelope(out); err != nil {
					t.Fatalf("%s event of %s: %v", ev.Type, in.Kind, err)
				}
			}
		}
	})
}
