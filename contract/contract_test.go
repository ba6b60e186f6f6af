package contract

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/registrar-go/registrar/bus"
)

// assertEqual compares two contracts by value, ignoring their sources.
func assertEqual(t *testing.T, got, want *Contract) {
	t.Helper()
	g, w := *got, *want
	g.src, w.src = nil, nil
	if !reflect.DeepEqual(g, w) {
		gy, _ := yaml.Marshal(&g)
		wy, _ := yaml.Marshal(&w)
		t.Errorf("contracts differ:\n--- got\n%s--- want\n%s", gy, wy)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The reducer's names, copied: package contract does not import it.
	want := &Contract{
		Name:            "node_registration_orchestrator",
		ContractVersion: bus.Version{Major: 1},
		NodeVersion:     "1.0.0",
		Description:     c.Description,
		EventBus: EventBus{
			SubscribeTopics: []string{
				"onex.evt.platform.node-introspection.v1",
				"onex.cmd.platform.node-registration-acked.v1",
				"onex.evt.platform.node-heartbeat.v1",
				"onex.cmd.platform.node-registration-timeout-check.v1",
				"onex.node.shutdown.announced.v1",
			},
			PublishTopics: []string{
				"onex.evt.platform.node-registration-initiated.v1",
				"onex.evt.platform.node-registration-accepted.v1",
				"onex.evt.platform.node-registration-ack-received.v1",
				"onex.evt.platform.node-became-active.v1",
				"onex.evt.platform.node-registration-ack-timed-out.v1",
				"onex.evt.platform.node-liveness-expired.v1",
			},
			DeadLetterTopic: "onex.dlq.platform.registration.v1",
			SnapshotTopic:   "onex.snapshot.platform.registration-snapshots.v1",
		},
		ConsumedEvents: []EventRoute{
			{"onex.evt.platform.node-introspection.v1", "NodeIntrospectionEvent"},
			{"onex.cmd.platform.node-registration-acked.v1", "NodeRegistrationAcked"},
			{"onex.evt.platform.node-heartbeat.v1", "NodeHeartbeatEvent"},
			{"onex.cmd.platform.node-registration-timeout-check.v1", "NodeRegistrationTimeoutCheck"},
			{"onex.node.shutdown.announced.v1", "node_shutdown_event"},
		},
		PublishedEvents: []EventRoute{
			{"onex.evt.platform.node-registration-initiated.v1", "NodeRegistrationInitiated"},
			{"onex.evt.platform.node-registration-accepted.v1", "NodeRegistrationAccepted"},
			{"onex.evt.platform.node-registration-ack-received.v1", "NodeRegistrationAckReceived"},
			{"onex.evt.platform.node-became-active.v1", "NodeBecameActive"},
			{"onex.evt.platform.node-registration-ack-timed-out.v1", "NodeRegistrationAckTimedOut"},
			{"onex.evt.platform.node-liveness-expired.v1", "NodeLivenessExpired"},
		},
		IntentConsumption: IntentConsumption{
			SubscribedIntents: []string{
				"postgres.upsert_registration", "postgres.update_registration", "postgres.delete_registration",
				"consul.register", "consul.deregister", "consul.pass_ttl",
			},
			IntentRoutingTable: map[string]string{
				"postgres.upsert_registration": "node_registry_effect",
				"postgres.update_registration": "node_registry_effect",
				"postgres.delete_registration": "node_registry_effect",
				"consul.register":              "node_registry_effect",
				"consul.deregister":            "node_registry_effect",
				"consul.pass_ttl":              "node_registry_effect",
			},
		},
		Timeouts: Timeouts{
			AckTimeout:       Duration(30 * time.Second),
			LivenessInterval: Duration(60 * time.Second),
			LivenessWindow:   Duration(90 * time.Second),
			SweepInterval:    Duration(time.Second),
		},
	}
	if c.Description == "" {
		t.Error("no description")
	}
	assertEqual(t, c, want)
	if c.Group() != "node_registration_orchestrator" {
		t.Errorf("Group() = %q, want the name", c.Group())
	}
}

// TestRoundTrip marshals contracts with yaml.Marshal and parses them back.
func TestRoundTrip(t *testing.T) {
	full := Default()
	full.EventBus.ConsumerGroup = "workers"
	full.ContractVersion = bus.Version{Major: 3, Minor: 2, Patch: 1, Prerelease: "rc.1", Build: "007"}
	full.Description = "quotes \" and: colons\n- and a dash"
	full.Timeouts.SweepInterval = Duration(1500 * time.Millisecond)
	full.Timeouts.LivenessWindow = 0
	for name, c := range map[string]*Contract{"default": Default(), "full": full} {
		t.Run(name, func(t *testing.T) {
			out, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse("out.yaml", out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			assertEqual(t, back, c)
			again, err := yaml.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(out) {
				t.Errorf("second marshal differs:\n%s\n---\n%s", out, again)
			}
		})
	}
}

func TestDefaultIsADeepCopy(t *testing.T) {
	a := Default()
	a.Name = "edited"
	a.EventBus.SubscribeTopics[0] = "edited"
	a.EventBus.PublishTopics[0] = "edited"
	a.ConsumedEvents[0].Topic = "edited"
	a.PublishedEvents[0].EventType = "edited"
	a.IntentConsumption.SubscribedIntents[0] = "edited"
	a.IntentConsumption.IntentRoutingTable["consul.register"] = "edited"
	delete(a.IntentConsumption.IntentRoutingTable, "consul.deregister")
	a.Timeouts.AckTimeout = 1

	b := Default()
	if err := b.Validate(); err != nil {
		t.Fatalf("a fresh Default is invalid after editing another: %v", err)
	}
	if b.Name == "edited" || b.EventBus.SubscribeTopics[0] == "edited" || b.EventBus.PublishTopics[0] == "edited" ||
		b.ConsumedEvents[0].Topic == "edited" || b.PublishedEvents[0].EventType == "edited" ||
		b.IntentConsumption.SubscribedIntents[0] == "edited" ||
		b.IntentConsumption.IntentRoutingTable["consul.register"] == "edited" ||
		len(b.IntentConsumption.IntentRoutingTable) != 6 || b.Timeouts.AckTimeout == 1 {
		t.Errorf("editing one Default changed another: %+v", b)
	}
	// Appending must not write into a shared backing array either.
	c := Default()
	d := c.Clone()
	c.EventBus.SubscribeTopics = append(c.EventBus.SubscribeTopics[:1], "x")
	if d.EventBus.SubscribeTopics[1] == "x" {
		t.Error("Clone shares the subscribe topics' backing array")
	}
	var nilContract *Contract
	if nilContract.Clone() != nil {
		t.Error("Clone of nil is not nil")
	}
}

func TestHelpers(t *testing.T) {
	c := Default()
	if got, want := c.RoutedIntents(), []string{
		"consul.deregister", "consul.pass_ttl", "consul.register",
		"postgres.delete_registration", "postgres.update_registration", "postgres.upsert_registration",
	}; !slices.Equal(got, want) {
		t.Errorf("RoutedIntents() = %q, want %q", got, want)
	}
	in := c.InputTopics()
	if !slices.Equal(in, c.EventBus.SubscribeTopics) {
		t.Errorf("InputTopics() = %q", in)
	}
	in[0] = "changed"
	if c.EventBus.SubscribeTopics[0] == "changed" {
		t.Error("InputTopics returned the contract's own slice")
	}
	if topic, ok := c.TopicFor("NodeBecameActive"); !ok || topic != "onex.evt.platform.node-became-active.v1" {
		t.Errorf("TopicFor(NodeBecameActive) = %q, %v", topic, ok)
	}
	if _, ok := c.TopicFor("NodeIntrospectionEvent"); ok {
		t.Error("TopicFor found a consumed event type")
	}
	if et, ok := c.EventTypeOf("onex.evt.platform.node-heartbeat.v1"); !ok || et != "NodeHeartbeatEvent" {
		t.Errorf("EventTypeOf(heartbeat topic) = %q, %v", et, ok)
	}
	if _, ok := c.EventTypeOf("onex.evt.platform.node-became-active.v1"); ok {
		t.Error("EventTypeOf found a published topic")
	}
	c.EventBus.ConsumerGroup = "g"
	if c.Group() != "g" {
		t.Errorf("Group() = %q, want g", c.Group())
	}
	var empty Contract
	if empty.RoutedIntents() != nil || empty.InputTopics() != nil {
		t.Error("helpers of an empty contract are not nil")
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Column: 5, Path: "a.b[1]", Message: "bad"}, "f.yaml:3:5: a.b[1]: bad"},
		{Error{File: "f.yaml", Line: 3, Message: "bad"}, "f.yaml:3: bad"},
		{Error{File: "f.yaml", Path: "name", Message: "bad"}, "f.yaml: name: bad"},
		{Error{Path: "name", Message: "bad"}, "name: bad"},
		{Error{Message: "bad"}, "bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestErrorsUnwrap(t *testing.T) {
	c := validCode()
	c.Name = ""
	c.Timeouts.AckTimeout = -1
	err := c.Validate()
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("Validate() = %v, want two Errors", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Path != "name" {
		t.Errorf("errors.As(*Error) = %v, want the name error", e)
	}
	wrapped := errors.Join(errors.New("context"), err)
	if !errors.As(wrapped, &e) {
		t.Error("errors.As does not find an *Error through a wrapper")
	}
	if got, want := err.Error(), "name: missing: a contract needs a name\ntimeouts.ack_timeout: negative duration -1ns"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestPathString(t *testing.T) {
	p := path{}.field("intent_consumption").field("intent_routing_table").key(`a"b`)
	if got, want := p.String(), `intent_consumption.intent_routing_table["a\"b"]`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	q := path{}.field("consumed_events").index(2).field("topic")
	if got, want := q.String(), "consumed_events[2].topic"; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	// Extending a path never writes into another's backing array.
	base := make(path, 0, 8).field("a")
	x, y := base.field("x"), base.field("y")
	if x.String() != "a.x" || y.String() != "a.y" {
		t.Errorf("paths share memory: %s, %s", x, y)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "30", want: 30 * time.Second},
		{in: "0", want: 0},
		{in: "-5", want: -5 * time.Second},
		{in: "-5s", want: -5 * time.Second},
		{in: "1_000", want: 1000 * time.Second},
		{in: `"30s"`, want: 30 * time.Second},
		{in: "~", want: 7}, // null leaves the value alone
		{in: `"30"`, err: true},
		{in: "1.5", err: true},
		{in: "30 s", err: true},
		{in: "9223372037", err: true},
		{in: "{s: 1}", err: true},
	} {
		var v struct {
			D Duration `yaml:"d"`
		}
		v.D = 7
		err := yaml.Unmarshal([]byte("d: "+tc.in), &v)
		if tc.err {
			if err == nil {
				t.Errorf("%s: got %v, want an error", tc.in, v.D)
			}
			continue
		}
		if err != nil || v.D.Duration() != tc.want {
			t.Errorf("%s: got %v, %v; want %v", tc.in, v.D, err, tc.want)
		}
	}
	out, err := yaml.Marshal(struct {
		D Duration `yaml:"d"`
	}{Duration(90 * time.Second)})
	if err != nil || string(out) != "d: 1m30s\n" {
		t.Errorf("Marshal = %q, %v", out, err)
	}
}

// TestPathological checks that huge or alias-heavy inputs are cut short
// instead of taking time and memory in proportion to their expansion.
func TestPathological(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: svc\nevent_bus: {subscribe_topics: [a], dead_letter_topic: d}\nx: &m {")
	for i := range 2000 {
		fmt.Fprintf(&b, "k%d: v, ", i)
	}
	b.WriteString("}\nconsumed_events: [")
	for range 5000 {
		b.WriteString("*m, ")
	}
	b.WriteString("]\nintent_consumption:\n  intent_routing_table:\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "    t%d: e\n", i)
	}
	start := time.Now()
	_, err := Parse("big.yaml", []byte(b.String()))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Parse took %v", d)
	}
	if got := errorLines(err); len(got) != 1 || !strings.HasSuffix(got[0], ": aliases expand the document too far; stopped decoding") {
		t.Errorf("errors = %.300q, want only the alias budget error", got)
	}

	// Without the aliases: every problem found, the first hundred listed.
	b.Reset()
	b.WriteString("name: svc\nevent_bus: {subscribe_topics: [a], dead_letter_topic: d}\nintent_consumption:\n  intent_routing_table:\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "    t%d: e\n", i)
	}
	start = time.Now()
	_, err = Parse("big.yaml", []byte(b.String()))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Parse took %v", d)
	}
	var es Errors
	if !errors.As(err, &es) || len(es) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d and a count", len(es), maxErrors)
	}
	if got, want := es[0].Error(), `big.yaml:5:5: intent_consumption.intent_routing_table["t0"]: intent type "t0" is routed but not in intent_consumption.subscribed_intents`; got != want {
		t.Errorf("first error = %s, want %s", got, want)
	}
	if got, want := es[maxErrors].Error(), "big.yaml: and 19900 more problems"; got != want {
		t.Errorf("last error = %s, want %s", got, want)
	}
}
