package bus_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/registrar-go/registrar/bus"
)

// FuzzDecodeEnvelope feeds arbitrary bytes to DecodeEnvelope. It must never
// panic, must report every failure as a *DecodeError, and an envelope it
// accepts must survive MarshalJSON and a second decode unchanged (zero
// versions become DefaultVersion, raw JSON is compacted), after which the
// encoding is stable. Its timestamp lies in [bus.MinTime, bus.MaxTime] and
// marshals, even plus the longest time.Duration, and EncodeEnvelope takes
// it. The seed corpus is in testdata/fuzz/FuzzDecodeEnvelope.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","envelope_timestamp":"2025-03-04T05:06:07Z","payload":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := bus.DecodeEnvelope(data)
		if err != nil {
			var de *bus.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeEnvelope error %T %v is not a *DecodeError", err, err)
			}
			return
		}
		checkTimeMarshals(t, env.EnvelopeTimestamp)
		if _, _, err := bus.EncodeEnvelope(env); err != nil {
			t.Fatalf("EncodeEnvelope of a decoded envelope: %v", err)
		}
		enc, err := env.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a decoded envelope: %v", err)
		}
		back, err := bus.DecodeEnvelope(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v\n(from %q)", enc, err, data)
		}
		want := *env
		if want.OnexVersion.IsZero() {
			want.OnexVersion = bus.DefaultVersion
		}
		if want.EnvelopeVersion.IsZero() {
			want.EnvelopeVersion = bus.DefaultEnvelopeVersion
		}
		checkEnvelope(t, back, &want)
		if !jsonEqual(back.Payload, env.Payload) {
			t.Errorf("payload %s became %s", env.Payload, back.Payload)
		}
		if len(env.Metadata) > 0 && !jsonEqual(back.Metadata, env.Metadata) {
			t.Errorf("metadata %s became %s", env.Metadata, back.Metadata)
		}
		enc2, err := back.MarshalJSON()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Errorf("encoding not stable:\n%s\n%s (%v)", enc, enc2, err)
		}
		if !json.Valid(enc) {
			t.Errorf("MarshalJSON wrote invalid JSON %s", enc)
		}
	})
}
