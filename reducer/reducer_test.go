package reducer_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer"
)

func TestPartitionKeyPrefersEntityThenNodeThenCorrelation(t *testing.T) {
	e, n, c := uuid.New(), uuid.New(), uuid.New()
	cases := []struct {
		ev   reducer.Event
		want []byte
	}{
		{reducer.Event{EntityID: e, NodeID: n, CorrelationID: c}, []byte(e.String())},
		{reducer.Event{NodeID: n, CorrelationID: c}, []byte(n.String())},
		{reducer.Event{CorrelationID: c}, []byte(c.String())},
		{reducer.Event{}, nil},
	}
	for i, tc := range cases {
		if got := tc.ev.PartitionKey(); string(got) != string(tc.want) || (tc.want == nil) != (got == nil) {
			t.Errorf("%d: key %q, want %q", i, got, tc.want)
		}
	}
}

func TestIsNoop(t *testing.T) {
	if !(reducer.Decision{Reason: "nothing"}).IsNoop() {
		t.Error("empty decision is not a no-op")
	}
	if (reducer.Decision{Intents: []intent.Intent{{Type: "x"}}}).IsNoop() {
		t.Error("a decision with an intent is a no-op")
	}
	if (reducer.Decision{Events: []reducer.Event{{}}}).IsNoop() {
		t.Error("a decision with an event is a no-op")
	}
}
