package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

// Publish an event keyed by its entity and handle it in a consumer group,
// on the in-process bus.
func ExampleEventBus_PublishEnvelope() {
	b, err := memory.New(memory.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	const topic = "onex.evt.platform.node-introspection.v1"
	nodeID := "6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60"
	env := &bus.Envelope{
		EnvelopeID:        uuid.MustParse("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
		EnvelopeTimestamp: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		EventType:         "node.introspection",
		Payload:           json.RawMessage(`{"node_id":"` + nodeID + `","node_type":"effect"}`),
	}
	ctx := context.Background()
	// Every event of one node lands on the node's partition, in order.
	if err := b.PublishEnvelope(ctx, topic, env, bus.WithKey([]byte(nodeID))); err != nil {
		fmt.Println(err)
		return
	}

	ctx, stop := context.WithCancel(ctx)
	err = b.Subscribe(ctx, "registrar", []string{topic}, func(ctx context.Context, msg *bus.Message) error {
		in, err := bus.DecodeEnvelope(msg.Value)
		if err != nil {
			return bus.NewContentError(err) // dead-letter it, never retry
		}
		fmt.Printf("partition %d (KeyPartition %d), offset %d\n", msg.Partition, bus.KeyPartition(msg.Key, 12), msg.Offset)
		fmt.Printf("%s %s: %s\n", in.EventType, in.EnvelopeID, in.Payload)
		fmt.Println("headers:", msg.Headers[bus.HeaderContentType], msg.Headers[bus.HeaderMessageID])
		stop() // one message is enough for the example
		return nil
	})
	fmt.Println("Subscribe returned", err)
	// Output:
	// partition 3 (KeyPartition 3), offset 0
	// node.introspection 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d: {"node_id":"6f1c2a4e-8b3d-4c5e-9f7a-1b2c3d4e5f60","node_type":"effect"}
	// headers: application/json 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
	// Subscribe returned <nil>
}

// Check before publishing whether a message fits the bus, as the runtime
// checks a decision's events before any effect runs.
func ExampleSizeLimited() {
	b, err := memory.New(memory.Config{MaxMessageBytes: 256})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	limit := 0 // no limit, unless the bus has one
	if sl, ok := any(b).(bus.SizeLimited); ok {
		limit = sl.MaxMessageBytes()
	}
	small := &bus.Message{Topic: "events", Key: []byte("node-1"), Value: []byte(`{"ok":true}`)}
	large := &bus.Message{Topic: "events", Key: []byte("node-1"), Value: make([]byte, 300)}
	fmt.Println("limit:", limit, "small:", bus.MessageSize(small), "large:", bus.MessageSize(large))
	fmt.Println("small fits:", bus.CheckSize(small, limit) == nil)
	err = bus.CheckSize(large, limit)
	fmt.Println("large:", errors.Is(err, bus.ErrMessageTooLarge))
	// Publish refuses it the same way.
	err = b.Publish(context.Background(), large)
	fmt.Println("publish:", errors.Is(err, bus.ErrMessageTooLarge))
	// Output:
	// limit: 256 small: 53 large: 342
	// small fits: true
	// large: true
	// publish: true
}

// Cut a dead letter down to fit a size limit.
func ExampleFitDeadLetter() {
	orig := &bus.Message{Topic: "events", Partition: 3, Offset: 17, Key: []byte("node-1"),
		Value: []byte(strings.Repeat("x", 400)), Headers: bus.Headers{"content_type": "application/json"}}
	limit := bus.MessageSize(orig) // the original was just within the limit
	dl := bus.DeadLetter("events.dlq", "registrar", orig, bus.NewContentError(errors.New("no such event type")), time.Unix(0, 0))
	fmt.Println("dead letter fits:", bus.MessageSize(dl) <= limit)
	fit, err := bus.FitDeadLetter(dl, limit)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("fitted fits:", bus.MessageSize(fit) <= limit)
	fmt.Println("value kept:", len(fit.Value), "of", fit.Headers[bus.HeaderDLQOriginalSize])
	fmt.Println("truncated:", fit.Headers[bus.HeaderDLQValueTruncated], "reason:", fit.Headers[bus.HeaderDLQReason])
	// Output:
	// dead letter fits: false
	// fitted fits: true
	// value kept: 114 of 400
	// truncated: true reason: no such event type
}

// Parse versions as ONEX nodes send them, order them by precedence, and
// write one as the ModelSemVer object.
func ExampleParseVersion() {
	var vs []bus.Version
	for _, s := range []string{"1.2.3", "1.2.3-rc.1+build.5", "1.2.3-beta.11", "1.2.3-beta.2"} {
		v, err := bus.ParseVersion(s)
		if err != nil {
			fmt.Println(err)
			return
		}
		vs = append(vs, v)
	}
	slices.SortFunc(vs, bus.Version.Compare)
	fmt.Println(vs)
	b, _ := json.Marshal(vs[2])
	fmt.Println(string(b))
	_, err := bus.ParseVersion("1.2.3-rc.01")
	fmt.Println(err)
	// Output:
	// [1.2.3-beta.2 1.2.3-beta.11 1.2.3-rc.1+build.5 1.2.3]
	// {"major":1,"minor":2,"patch":3,"prerelease":["rc",1],"build":["build","5"]}
	// version "1.2.3-rc.01": prerelease identifier "01" is numeric with a leading zero
}
