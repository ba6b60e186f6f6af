package registration_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

const goodVersion = `{"major":1,"minor":2,"patch":3}`

// introspectionEnvelope returns goodIntrospection, its node_version set to
// version, in an envelope, as it arrives on the introspection topic.
func introspectionEnvelope(t *testing.T, version string) *bus.Envelope {
	t.Helper()
	if !strings.Contains(goodIntrospection, goodVersion) {
		t.Fatalf("fixture lacks %s", goodVersion)
	}
	payload := strings.Replace(goodIntrospection, goodVersion, version, 1)
	e, err := bus.DecodeEnvelope([]byte(`{"envelope_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60",` +
		`"envelope_timestamp":"2026-03-01T12:00:00Z","payload":` + payload + `}`))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// payloadOf returns the payload of d's only intent of type typ.
func payloadOf[P any](t *testing.T, d reducer.Decision, typ string) P {
	t.Helper()
	var found []intent.Intent
	for _, in := range d.Intents {
		if in.Type == typ {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		t.Fatalf("decision has %d %s intents, want 1: %+v", len(found), typ, d)
	}
	p, ok := found[0].Payload.(P)
	if !ok {
		t.Fatalf("%s payload is %T", typ, found[0].Payload)
	}
	return p
}

// TestNodeVersionStoredWhole: an introspection whose node_version has a
// prerelease or build metadata, in either form, decodes (it is not
// dead-lettered), and its registration stores the version whole, registers
// it whole in Consul once acked, refreshes it whole on an active node, and
// encodes it whole.
func TestNodeVersionStoredWhole(t *testing.T) {
	r := newReducer(t)
	for _, tt := range []struct {
		version, want string
	}{
		{`"1.2.3-rc.1"`, "1.2.3-rc.1"},
		{`"1.2.3+build.5"`, "1.2.3+build.5"},
		{`"1.2.3-rc.1+build.5"`, "1.2.3-rc.1+build.5"},
		{`{"major":1,"minor":2,"patch":3,"prerelease":["rc",1]}`, "1.2.3-rc.1"},
		{`{"major":1,"minor":2,"patch":3,"prerelease":["rc",1],"build":["build","5"]}`, "1.2.3-rc.1+build.5"},
		{`{"major":1,"minor":2,"patch":3,"prerelease":null,"build":null}`, "1.2.3"},
		{`{"major":1,"minor":2,"patch":3,"build":"build.007"}`, "1.2.3+build.007"},
	} {
		t.Run(tt.version, func(t *testing.T) {
			e := introspectionEnvelope(t, tt.version)
			in, err := r.Decode(registration.TopicIntrospection, e)
			if err != nil {
				t.Fatalf("Decode: %v (dead-lettered)", err)
			}
			ev := in.Event.(*registration.Introspection)
			if got := ev.NodeVersion.String(); got != tt.want {
				t.Fatalf("NodeVersion %q, want %q", got, tt.want)
			}

			d := r.Decide(nil, in, t0)
			if d.State != string(registration.StateAwaitingAck) {
				t.Fatalf("decided %+v", d)
			}
			if got := payloadOf[*registration.UpsertRegistration](t, d, registration.IntentUpsert).Projection.NodeVersion; got != tt.want {
				t.Errorf("stored node_version %q, want %q", got, tt.want)
			}
			p := r.Evolve(nil, in, d)
			if p == nil || p.NodeVersion != tt.want {
				t.Fatalf("evolved projection %+v", p)
			}

			later := t0.Add(time.Second)
			ack := &registration.Ack{NodeID: nodeID, CorrelationID: corrID, Timestamp: later}
			acked := r.Decide(p, reducer.Input{EntityID: nodeID, Kind: registration.KindAck, Event: ack, Envelope: env(later)}, later)
			if got := payloadOf[*registration.ConsulRegister](t, acked, registration.IntentConsulReg).NodeVersion; got != tt.want {
				t.Errorf("Consul node_version %q, want %q", got, tt.want)
			}

			active := projection(registration.StateActive)
			active.NodeVersion = "1.0.0"
			refresh := r.Decide(active, in, t0)
			if got := payloadOf[*registration.UpsertRegistration](t, refresh, registration.IntentUpsert).Projection.NodeVersion; got != tt.want {
				t.Errorf("refreshed node_version %q, want %q", got, tt.want)
			}

			raw, err := ev.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			again, err := registration.DecodeIntrospection(raw)
			if err != nil || again.NodeVersion != ev.NodeVersion {
				t.Fatalf("re-decoding %s: %+v, %v", raw, again, err)
			}
		})
	}
}

// TestIntrospectionWritesVersionObject: the introspection is written with
// node_version as ModelSemVer's object, the prerelease and build arrays
// left out when empty.
func TestIntrospectionWritesVersionObject(t *testing.T) {
	for v, want := range map[bus.Version]string{
		{Major: 1, Minor: 2, Patch: 3}:                                       `"node_version":{"major":1,"minor":2,"patch":3},`,
		{Major: 1, Minor: 2, Patch: 3, Prerelease: "rc.1", Build: "build.5"}: `"node_version":{"major":1,"minor":2,"patch":3,"prerelease":["rc",1],"build":["build","5"]},`,
	} {
		in := introspection()
		in.NodeVersion = v
		raw, err := json.Marshal(in)
		if err != nil || !strings.Contains(string(raw), want) {
			t.Errorf("%s: %s, %v; want it to contain %s", v, raw, err, want)
		}
	}
}

// TestHeartbeatVersionWhole: a heartbeat's node_version is kept and written
// whole.
func TestHeartbeatVersionWhole(t *testing.T) {
	for version, want := range map[string]string{
		`"1.2.3-rc.1+build.5"`: "1.2.3-rc.1+build.5",
		`{"major":1,"minor":2,"patch":3,"prerelease":["rc",1],"build":["build","5"]}`: "1.2.3-rc.1+build.5",
		`"1.2"`: "1.2.0",
	} {
		h, err := registration.DecodeHeartbeat([]byte(strings.Replace(goodHeartbeat, `"1.2.3"`, version, 1)))
		if err != nil || h.NodeVersion != want {
			t.Fatalf("%s: %+v, %v", version, h, err)
		}
		raw, err := h.MarshalJSON()
		if err != nil || !strings.Contains(string(raw), `"node_version":"`+want+`"`) {
			t.Fatalf("%s: MarshalJSON = %s, %v", version, raw, err)
		}
		if again, err := registration.DecodeHeartbeat(raw); err != nil || again.NodeVersion != want {
			t.Fatalf("re-decoding %s: %+v, %v", raw, again, err)
		}
	}
}

// TestHostileNodeVersions: a node_version that is not a semantic version is
// an error naming payload.node_version and saying what is wrong, for the
// introspection (through Reducer.Decode, as the runtime decodes) and the
// heartbeat.
func TestHostileNodeVersions(t *testing.T) {
	r := newReducer(t)
	long := strings.Repeat("a", 10000)
	for _, tt := range []struct {
		name, version, reason string
	}{
		{"leading zero", `"01.2.3"`, `major "01" has a leading zero`},
		{"prerelease leading zero", `"1.2.3-rc.01"`, `prerelease identifier "01" is numeric with a leading zero`},
		{"object prerelease leading zero", `{"major":1,"minor":2,"patch":3,"prerelease":["rc","01"]}`, "leading zero"},
		{"empty prerelease", `"1.2.3-"`, "the prerelease after '-' is empty"},
		{"empty build", `"1.2.3+"`, "the build metadata after '+' is empty"},
		{"empty identifier", `"1.2.3-rc..1"`, "prerelease identifier 2 is empty"},
		{"object empty identifier", `{"major":1,"minor":2,"patch":3,"build":["a",""]}`, "identifier 2 is empty"},
		{"unicode", `"1.2.3-bêta"`, `has 'ê'`},
		{"unicode digits", `"１.2.3"`, `major "１" is not a number`},
		{"huge number", `"1.2.99999999999999999999"`, "is larger than"},
		{"object huge number", `{"major":99999999999999999999}`, "does not fit an int"},
		{"10k-character prerelease", `"1.2.3-` + long + `"`, "more than 256"},
		{"object 10k-character prerelease", `{"major":1,"prerelease":["` + long + `"]}`, "longer than 256 bytes"},
		{"prerelease on a short version", `"1.2-rc.1"`, "needs all of major.minor.patch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := introspectionEnvelope(t, tt.version)
			_, err := r.Decode(registration.TopicIntrospection, e)
			checkVersionError(t, err, tt.reason)
			_, err = registration.DecodeHeartbeat([]byte(strings.Replace(goodHeartbeat, `"1.2.3"`, tt.version, 1)))
			checkVersionError(t, err, tt.reason)
		})
	}
}

func checkVersionError(t *testing.T, err error, reason string) {
	t.Helper()
	var de *bus.DecodeError
	if !errorsAs(err, &de) || de.Field != "payload.node_version" {
		t.Fatalf("error %v, want a *bus.DecodeError naming payload.node_version", err)
	}
	if !strings.Contains(de.Reason, reason) {
		t.Errorf("reason %q, want it to contain %q", de.Reason, reason)
	}
	if len(err.Error()) > 250 {
		t.Errorf("error is %d bytes long: %v", len(err.Error()), err)
	}
}
