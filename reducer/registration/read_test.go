package registration

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestHasCapability(t *testing.T) {
	for _, c := range []struct {
		caps, name string
		want       bool
	}{
		{`{"postgres": true}`, "postgres", true},
		{` { "postgres" :  true } `, "postgres", true},
		{`{"postgres": "true"}`, "postgres", false},
		{`{"postgres": 1}`, "postgres", false},
		{`{"postgres": false, "kafka": true}`, "postgres", false},
		{`{"postgres": true, "postgres": false}`, "postgres", false},
		{`{"postgres": false, "postgres": true}`, "postgres", true},
		{`{"nested": {"postgres": true}}`, "postgres", false},
		{`{"postgresql": true}`, "postgres", false},
		{`{"x": "postgres", "postgres_x": true}`, "postgres", false},
		{`{"p\u006fstgres": true}`, "postgres", true},
		{`{"\u00fc": true}`, "ü", true},
		{`{"ü": true}`, "ü", true},
		{`{"a\"b": true}`, `a"b`, true},
		{`{"<x>": true}`, "<x>", true},
		{`[true]`, "0", false},
		{`not json`, "postgres", false},
		{``, "postgres", false},
	} {
		if got := HasCapability(json.RawMessage(c.caps), c.name); got != c.want {
			t.Errorf("HasCapability(%s, %q) = %v, want %v", c.caps, c.name, got, c.want)
		}
	}
}

func TestQueryRequest(t *testing.T) {
	since := time.Date(2025, 1, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600))
	r, err := Query{States: []State{StateActive, StateAccepted, StateActive}, UpdatedSince: since}.Request()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.States) != 2 || r.States[0] != StateAccepted || r.States[1] != StateActive {
		t.Errorf("States %v, want [accepted active] (enum order, no repeats)", r.States)
	}
	if r.Limit != DefaultListLimit || r.HasAfter {
		t.Errorf("Limit %d, HasAfter %v", r.Limit, r.HasAfter)
	}
	if want := since.UTC().Truncate(time.Microsecond); !r.UpdatedSince.Equal(want) || r.UpdatedSince.Location() != time.UTC {
		t.Errorf("UpdatedSince %v, want %v in UTC", r.UpdatedSince, want)
	}
	id := uuid.MustParse("01234567-89ab-4cde-8f01-23456789abcd")
	next, err := Query{States: []State{StateAccepted, StateActive}, UpdatedSince: since.UTC(), Cursor: r.Cursor(id)}.Request()
	if err != nil || !next.HasAfter || next.After != id {
		t.Errorf("the cursor does not round-trip: %+v, %v", next, err)
	}
	for _, c := range []struct {
		q     Query
		field string
	}{
		{Query{Limit: -1}, "Limit"},
		{Query{Limit: MaxListLimit + 1}, "Limit"},
		{Query{States: []State{"x"}}, "States"},
		{Query{NodeType: "x"}, "NodeType"},
		{Query{Capability: "a\x00b"}, "Capability"},
		{Query{Capability: "\xff"}, "Capability"},
	} {
		if _, err := c.q.Request(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want an error naming %s", c.q, err, c.field)
		}
	}
	if _, err := (Query{Limit: MaxListLimit}).Request(); err != nil {
		t.Errorf("Limit MaxListLimit: %v", err)
	}
	if _, err := (Query{Cursor: r.Cursor(id)}).Request(); !errors.Is(err, ErrBadCursor) {
		t.Errorf("a cursor of other filters: %v", err)
	}
}
