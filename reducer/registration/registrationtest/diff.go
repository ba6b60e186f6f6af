package registrationtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"time"

	"github.com/registrar-go/registrar/reducer/registration"
)

// Diff returns "" if got holds what want holds as a store keeps it, or a
// description of each difference. It compares as a database does: times by
// instant (zero is NULL), capabilities as JSON values (empty is {}), nil
// and empty endpoints alike.
func Diff(want, got *registration.Projection) string {
	switch {
	case want == nil && got == nil:
		return ""
	case want == nil:
		return fmt.Sprintf("want no projection, got %s", got.EntityID)
	case got == nil:
		return fmt.Sprintf("want projection %s, got none", want.EntityID)
	}
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s: want %v, got %v", field, w, g)) }
	if want.EntityID != got.EntityID {
		add("entity_id", want.EntityID, got.EntityID)
	}
	if want.Domain != got.Domain {
		add("domain", want.Domain, got.Domain)
	}
	if want.State != got.State {
		add("current_state", want.State, got.State)
	}
	if want.NodeType != got.NodeType {
		add("node_type", want.NodeType, got.NodeType)
	}
	if want.NodeVersion != got.NodeVersion {
		add("node_version", want.NodeVersion, got.NodeVersion)
	}
	if !sameJSON(want.Capabilities, got.Capabilities) {
		add("capabilities", string(want.Capabilities), string(got.Capabilities))
	}
	if (len(want.Endpoints) != 0 || len(got.Endpoints) != 0) && !maps.Equal(want.Endpoints, got.Endpoints) {
		add("endpoints", want.Endpoints, got.Endpoints)
	}
	for _, f := range []struct {
		name string
		w, g time.Time
	}{
		{"ack_deadline", want.AckDeadline, got.AckDeadline},
		{"liveness_deadline", want.LivenessDeadline, got.LivenessDeadline},
		{"last_heartbeat_at", want.LastHeartbeatAt, got.LastHeartbeatAt},
		{"ack_timeout_emitted_at", want.AckTimeoutEmittedAt, got.AckTimeoutEmittedAt},
		{"liveness_timeout_emitted_at", want.LivenessTimeoutEmittedAt, got.LivenessTimeoutEmittedAt},
		{"registered_at", want.RegisteredAt, got.RegisteredAt},
		{"updated_at", want.UpdatedAt, got.UpdatedAt},
	} {
		if f.w.IsZero() != f.g.IsZero() || !f.w.Equal(f.g) {
			add(f.name, fmtTime(f.w), fmtTime(f.g))
		}
	}
	if want.LastAppliedEventID != got.LastAppliedEventID {
		add("last_applied_event_id", want.LastAppliedEventID, got.LastAppliedEventID)
	}
	if want.CorrelationID != got.CorrelationID {
		add("correlation_id", want.CorrelationID, got.CorrelationID)
	}
	if want.Generation != got.Generation {
		add("generation", want.Generation, got.Generation)
	}
	return strings.Join(d, "; ")
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "NULL"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// sameJSON compares two JSON documents as values; empty stands for {}.
func sameJSON(a, b []byte) bool {
	if len(bytes.TrimSpace(a)) == 0 {
		a = []byte("{}")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}
