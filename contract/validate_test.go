package contract

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// baseLines is a small valid contract; the validation cases edit its lines,
// so the expected positions can be read off this listing.
var baseLines = []string{
	/* 1 */ "name: svc",
	/* 2 */ "contract_version: 1.0.0",
	/* 3 */ "event_bus:",
	/* 4 */ "  subscribe_topics:",
	/* 5 */ "    - in.a",
	/* 6 */ "    - in.b",
	/* 7 */ "  publish_topics:",
	/* 8 */ "    - out.a",
	/* 9 */ "    - out.b",
	/* 10 */ "  dead_letter_topic: dlq",
	/* 11 */ "consumed_events:",
	/* 12 */ "  - topic: in.a",
	/* 13 */ "    event_type: A",
	/* 14 */ "  - topic: in.b",
	/* 15 */ "    event_type: B",
	/* 16 */ "published_events:",
	/* 17 */ "  - topic: out.a",
	/* 18 */ "    event_type: OutA",
	/* 19 */ "  - topic: out.b",
	/* 20 */ "    event_type: OutB",
	/* 21 */ "intent_consumption:",
	/* 22 */ "  subscribed_intents:",
	/* 23 */ "    - x.one",
	/* 24 */ "    - x.two",
	/* 25 */ "  intent_routing_table:",
	/* 26 */ "    x.one: eff",
	/* 27 */ "    x.two: eff",
	/* 28 */ "timeouts:",
	/* 29 */ "  ack_timeout: 30s",
	/* 30 */ "  liveness_interval: 60",
	/* 31 */ "  liveness_window: 1m30s",
	/* 32 */ "  sweep_interval: 1s",
}

// edited returns the base contract with the given lines (1-based) replaced;
// a replacement may hold several lines, or none ("" deletes the line).
func edited(edits map[int]string) []byte {
	var out []string
	for i, l := range baseLines {
		if r, ok := edits[i+1]; ok {
			if r != "" {
				out = append(out, r)
			}
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		return []string{"not an Errors: " + err.Error()}
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

func TestBaseIsValid(t *testing.T) {
	c, err := Parse("c.yaml", edited(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Timeouts.LivenessInterval.Duration(); got != time.Minute {
		t.Errorf("liveness_interval = %v, want 1m (integer seconds)", got)
	}
	if got := c.Timeouts.LivenessWindow.Duration(); got != 90*time.Second {
		t.Errorf("liveness_window = %v, want 1m30s", got)
	}
}

func TestValidateRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edits map[int]string
		want  []string
	}{
		{
			name:  "missing name",
			edits: map[int]string{1: ""},
			want:  []string{`c.yaml:1:1: name: missing: a contract needs a name`},
		},
		{
			name:  "null name",
			edits: map[int]string{1: "name: ~"},
			want:  []string{`c.yaml:1:7: name: missing: a contract needs a name`},
		},
		{
			name:  "routed intent type not subscribed",
			edits: map[int]string{27: "    x.two: eff\n    x.three: eff"},
			want: []string{
				`c.yaml:28:5: intent_consumption.intent_routing_table["x.three"]: intent type "x.three" is routed but not in intent_consumption.subscribed_intents`,
			},
		},
		{
			name:  "subscribed intent type not routed",
			edits: map[int]string{27: ""},
			want: []string{
				`c.yaml:24:7: intent_consumption.subscribed_intents[1]: intent type "x.two" is subscribed but not routed in intent_consumption.intent_routing_table`,
			},
		},
		{
			name:  "empty and duplicate subscribed intents",
			edits: map[int]string{24: "    - x.two\n    - \"\"\n    - x.one"},
			want: []string{
				`c.yaml:25:7: intent_consumption.subscribed_intents[2]: empty intent type`,
				`c.yaml:26:7: intent_consumption.subscribed_intents[3]: duplicate intent type "x.one" (first at intent_consumption.subscribed_intents[0])`,
			},
		},
		{
			name:  "route to no effect",
			edits: map[int]string{27: "    x.two:"},
			want: []string{
				`c.yaml:27:5: intent_consumption.intent_routing_table["x.two"]: intent type "x.two" is routed to no effect`,
			},
		},
		{
			name:  "empty subscribe topic",
			edits: map[int]string{6: "    - \"\""},
			want: []string{
				`c.yaml:6:7: event_bus.subscribe_topics[1]: empty topic`,
				// The route of in.b now names a topic nobody subscribes.
				`c.yaml:14:12: consumed_events[1].topic: topic "in.b" is not in event_bus.subscribe_topics`,
			},
		},
		{
			name:  "duplicate subscribe topic",
			edits: map[int]string{6: "    - in.b\n    - in.a"},
			want: []string{
				`c.yaml:7:7: event_bus.subscribe_topics[2]: duplicate topic "in.a" (first at event_bus.subscribe_topics[0])`,
			},
		},
		{
			name:  "empty and duplicate publish topics",
			edits: map[int]string{9: "    - out.b\n    - out.a\n    -"},
			want: []string{
				`c.yaml:10:7: event_bus.publish_topics[2]: duplicate topic "out.a" (first at event_bus.publish_topics[0])`,
				`c.yaml:11:6: event_bus.publish_topics[3]: empty topic`,
			},
		},
		{
			name:  "no subscribe topics",
			edits: map[int]string{4: "  subscribe_topics: []", 5: "", 6: "", 11: "", 12: "", 13: "", 14: "", 15: ""},
			want:  []string{`c.yaml:4:21: event_bus.subscribe_topics: no topics: a contract consumes at least one topic`},
		},
		{
			name:  "absent subscribe topics point at event_bus",
			edits: map[int]string{4: "", 5: "", 6: "", 11: "", 12: "", 13: "", 14: "", 15: ""},
			want:  []string{`c.yaml:4:3: event_bus.subscribe_topics: no topics: a contract consumes at least one topic`},
		},
		{
			name:  "topic both subscribed and published",
			edits: map[int]string{9: "    - out.b\n    - in.b"},
			want: []string{
				`c.yaml:10:7: event_bus.publish_topics[2]: topic "in.b" is also subscribed (event_bus.subscribe_topics[1]): a node must not consume its own output`,
			},
		},
		{
			name:  "dead-letter topic missing",
			edits: map[int]string{10: ""},
			want: []string{
				`c.yaml:4:3: event_bus.dead_letter_topic: missing: messages that can never be processed need a dead-letter topic`,
			},
		},
		{
			name:  "dead-letter topic empty",
			edits: map[int]string{10: `  dead_letter_topic: ""`},
			want: []string{
				`c.yaml:10:22: event_bus.dead_letter_topic: missing: messages that can never be processed need a dead-letter topic`,
			},
		},
		{
			name:  "dead-letter topic is an input topic",
			edits: map[int]string{10: "  dead_letter_topic: in.b"},
			want: []string{
				`c.yaml:10:22: event_bus.dead_letter_topic: dead-letter topic "in.b" is also an input topic (event_bus.subscribe_topics[1]): dead letters would be consumed again`,
			},
		},
		{
			name:  "dead-letter topic is a publish topic",
			edits: map[int]string{10: "  dead_letter_topic: out.a"},
			want: []string{
				`c.yaml:10:22: event_bus.dead_letter_topic: dead-letter topic "out.a" is also a publish topic (event_bus.publish_topics[0])`,
			},
		},
		{
			name:  "consumed topic not subscribed",
			edits: map[int]string{14: "  - topic: in.c"},
			want: []string{
				`c.yaml:14:12: consumed_events[1].topic: topic "in.c" is not in event_bus.subscribe_topics`,
			},
		},
		{
			name:  "consumed topic twice, event type missing",
			edits: map[int]string{14: "  - topic: in.a", 15: "    event_type: \"\""},
			want: []string{
				`c.yaml:14:12: consumed_events[1].topic: topic "in.a" is consumed twice (first at consumed_events[0])`,
				`c.yaml:15:17: consumed_events[1].event_type: missing`,
			},
		},
		{
			name:  "consumed route without topic",
			edits: map[int]string{14: "  - event_type: B", 15: ""},
			want:  []string{`c.yaml:14:5: consumed_events[1].topic: missing`},
		},
		{
			name:  "published topic not in publish_topics",
			edits: map[int]string{19: "  - topic: out.c"},
			want: []string{
				`c.yaml:19:12: published_events[1].topic: topic "out.c" is not in event_bus.publish_topics`,
			},
		},
		{
			name:  "duplicate published event type",
			edits: map[int]string{20: "    event_type: OutA"},
			want: []string{
				`c.yaml:20:17: published_events[1].event_type: duplicate event type "OutA" (first at published_events[0])`,
			},
		},
		{
			name:  "published route without event type",
			edits: map[int]string{20: ""},
			want:  []string{`c.yaml:19:5: published_events[1].event_type: missing`},
		},
		{
			name:  "negative timeouts",
			edits: map[int]string{29: "  ack_timeout: -5s", 30: "  liveness_interval: -60", 32: "  sweep_interval: -1ms"},
			want: []string{
				`c.yaml:29:16: timeouts.ack_timeout: negative duration -5s`,
				`c.yaml:30:22: timeouts.liveness_interval: negative duration -1m0s`,
				`c.yaml:32:19: timeouts.sweep_interval: negative duration -1ms`,
			},
		},
		{
			name:  "zero timeouts mean default",
			edits: map[int]string{29: "  ack_timeout: 0", 30: "  liveness_interval: 0s", 31: "", 32: ""},
		},
		{
			name:  "no timeouts at all",
			edits: map[int]string{28: "", 29: "", 30: "", 31: "", 32: ""},
		},
		{
			name:  "liveness window shorter than interval is fine",
			edits: map[int]string{31: "  liveness_window: 10s"},
		},
		{
			name: "every problem at once, in file order",
			edits: map[int]string{
				1:  `name: ""`,
				6:  "    - in.a",
				10: "  dead_letter_topic: in.a",
				20: "    event_type: OutA",
				27: "    x.three: eff",
				29: "  ack_timeout: -1",
			},
			want: []string{
				`c.yaml:1:7: name: missing: a contract needs a name`,
				`c.yaml:6:7: event_bus.subscribe_topics[1]: duplicate topic "in.a" (first at event_bus.subscribe_topics[0])`,
				`c.yaml:10:22: event_bus.dead_letter_topic: dead-letter topic "in.a" is also an input topic (event_bus.subscribe_topics[0]): dead letters would be consumed again`,
				`c.yaml:14:12: consumed_events[1].topic: topic "in.b" is not in event_bus.subscribe_topics`,
				`c.yaml:20:17: published_events[1].event_type: duplicate event type "OutA" (first at published_events[0])`,
				`c.yaml:24:7: intent_consumption.subscribed_intents[1]: intent type "x.two" is subscribed but not routed in intent_consumption.intent_routing_table`,
				`c.yaml:27:5: intent_consumption.intent_routing_table["x.three"]: intent type "x.three" is routed but not in intent_consumption.subscribed_intents`,
				`c.yaml:29:16: timeouts.ack_timeout: negative duration -1s`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", edited(tc.edits))
			if got := errorLines(err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got  %q\n want %q", got, tc.want)
			}
		})
	}
}

// validCode is a valid contract built in code, like baseLines.
func validCode() *Contract {
	return &Contract{
		Name: "svc",
		EventBus: EventBus{
			SubscribeTopics: []string{"in.a", "in.b"},
			PublishTopics:   []string{"out.a"},
			DeadLetterTopic: "dlq",
		},
		ConsumedEvents:  []EventRoute{{Topic: "in.a", EventType: "A"}, {Topic: "in.b", EventType: "B"}},
		PublishedEvents: []EventRoute{{Topic: "out.a", EventType: "OutA"}},
		IntentConsumption: IntentConsumption{
			SubscribedIntents:  []string{"x.one"},
			IntentRoutingTable: map[string]string{"x.one": "eff"},
		},
	}
}

func TestValidateCodeBuilt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Contract)
		want   []string
	}{
		{name: "valid", mutate: func(*Contract) {}},
		{
			name:   "zero value",
			mutate: func(c *Contract) { *c = Contract{} },
			want: []string{
				`name: missing: a contract needs a name`,
				`event_bus.subscribe_topics: no topics: a contract consumes at least one topic`,
				`event_bus.dead_letter_topic: missing: messages that can never be processed need a dead-letter topic`,
			},
		},
		{
			name: "routing mismatch both ways",
			mutate: func(c *Contract) {
				c.IntentConsumption.SubscribedIntents = []string{"x.one", "x.two"}
				c.IntentConsumption.IntentRoutingTable = map[string]string{"x.one": "eff", "x.zzz": "eff", "": ""}
			},
			want: []string{
				`intent_consumption.subscribed_intents[1]: intent type "x.two" is subscribed but not routed in intent_consumption.intent_routing_table`,
				`intent_consumption.intent_routing_table[""]: empty intent type`,
				`intent_consumption.intent_routing_table[""]: intent type "" is routed to no effect`,
				`intent_consumption.intent_routing_table["x.zzz"]: intent type "x.zzz" is routed but not in intent_consumption.subscribed_intents`,
			},
		},
		{
			name: "topics",
			mutate: func(c *Contract) {
				c.EventBus.PublishTopics = []string{"out.a", "in.a", "out.a"}
				c.EventBus.DeadLetterTopic = "out.a"
				c.PublishedEvents = append(c.PublishedEvents, EventRoute{Topic: "nope", EventType: "X"})
			},
			want: []string{
				`event_bus.publish_topics[2]: duplicate topic "out.a" (first at event_bus.publish_topics[0])`,
				`event_bus.publish_topics[1]: topic "in.a" is also subscribed (event_bus.subscribe_topics[0]): a node must not consume its own output`,
				`event_bus.dead_letter_topic: dead-letter topic "out.a" is also a publish topic (event_bus.publish_topics[0])`,
				`published_events[1].topic: topic "nope" is not in event_bus.publish_topics`,
			},
		},
		{
			name:   "negative timeout",
			mutate: func(c *Contract) { c.Timeouts.LivenessWindow = Duration(-time.Second) },
			want:   []string{`timeouts.liveness_window: negative duration -1s`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validCode()
			tc.mutate(c)
			if got := errorLines(c.Validate()); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got  %q\n want %q", got, tc.want)
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	var c *Contract
	if err := c.Validate(); err == nil || err.Error() != "nil contract" {
		t.Errorf("Validate() = %v, want nil contract", err)
	}
}

// TestValidateEditedAfterParse checks that an element changed in code is
// reported without the stale position of what the file said there, while
// untouched elements keep theirs.
func TestValidateEditedAfterParse(t *testing.T) {
	c, err := Parse("c.yaml", edited(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Name = ""                            // the file has a name: no position
	c.EventBus.SubscribeTopics[1] = "in.a" // changed: no position
	c.EventBus.PublishTopics = append(c.EventBus.PublishTopics, "in.a")
	c.Timeouts.AckTimeout = Duration(-time.Second)
	c.IntentConsumption.SubscribedIntents = c.IntentConsumption.SubscribedIntents[:1]
	want := []string{
		// Still as in the file: positions kept.
		`c.yaml:14:12: consumed_events[1].topic: topic "in.b" is not in event_bus.subscribe_topics`,
		`c.yaml:27:5: intent_consumption.intent_routing_table["x.two"]: intent type "x.two" is routed but not in intent_consumption.subscribed_intents`,
		// Changed in code: the file says something else there.
		`c.yaml: name: missing: a contract needs a name`,
		`c.yaml: event_bus.subscribe_topics[1]: duplicate topic "in.a" (first at event_bus.subscribe_topics[0])`,
		`c.yaml: event_bus.publish_topics[2]: topic "in.a" is also subscribed (event_bus.subscribe_topics[0]): a node must not consume its own output`,
		`c.yaml: timeouts.ack_timeout: negative duration -1s`,
	}
	if got := errorLines(c.Validate()); !slices.Equal(got, want) {
		t.Errorf("errors:\n got  %q\n want %q", got, want)
	}
}

func TestSnapshotTopic(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       []string
		topic      string
		on         bool
	}{
		{name: "absent", line: "  dead_letter_topic: dlq", on: true},
		{name: "named", line: "  dead_letter_topic: dlq\n  snapshot_topic: snap", topic: "snap", on: true},
		{name: "also published", line: "  dead_letter_topic: dlq\n  snapshot_topic: out.c", topic: "out.c", on: true},
		{name: "none", line: "  dead_letter_topic: dlq\n  snapshot_topic: none", on: false},
		{name: "input", line: "  dead_letter_topic: dlq\n  snapshot_topic: in.b",
			want: []string{`c.yaml:11:19: event_bus.snapshot_topic: snapshot topic "in.b" is also an input topic (event_bus.subscribe_topics[1]): a node must not consume its own output`}},
		{name: "dead letters", line: "  dead_letter_topic: dlq\n  snapshot_topic: dlq",
			want: []string{`c.yaml:11:19: event_bus.snapshot_topic: snapshot topic "dlq" is also the dead-letter topic`}},
		{name: "an event's topic", line: "  dead_letter_topic: dlq\n  snapshot_topic: out.b",
			want: []string{`c.yaml:11:19: event_bus.snapshot_topic: snapshot topic "out.b" is also the topic of OutB (published_events[1]): compaction would drop its events`}},
		{name: "not a string", line: "  dead_letter_topic: dlq\n  snapshot_topic: [a]",
			want: []string{`c.yaml:11:19: event_bus.snapshot_topic: want a string, got a list`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := map[int]string{10: tc.line}
			if tc.name == "also published" {
				lines[9] = "    - out.b\n    - out.c"
			}
			c, err := Parse("c.yaml", edited(lines))
			if tc.name == "also published" {
				// Line numbers move by one; only the outcome matters here.
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := errorLines(err); !slices.Equal(got, tc.want) {
				t.Fatalf("errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if err != nil {
				return
			}
			if topic, on := c.Snapshots(); topic != tc.topic || on != tc.on {
				t.Errorf("Snapshots() = %q, %v; want %q, %v", topic, on, tc.topic, tc.on)
			}
		})
	}
	// Built in code: the same rule, without positions.
	c := Default()
	c.EventBus.SnapshotTopic = c.EventBus.SubscribeTopics[0]
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "is also an input topic") {
		t.Errorf("snapshot topic = an input topic, built in code: %v", err)
	}
}
