package mocks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/mocks"
	"github.com/registrar-go/registrar/reducer/registration"
)

// alertStuck is the code under test, as a service that uses registrar
// might write it: it pages through the registrations that wait for an ack
// and publishes one alert per node to topic, keyed by the node's id. It
// returns how many alerts it published.
func alertStuck(ctx context.Context, r registration.Reader, b bus.EventBus, topic string) (int, error) {
	q := registration.Query{States: []registration.State{registration.StateAwaitingAck}}
	n := 0
	for {
		page, err := r.List(ctx, q)
		if err != nil {
			return n, fmt.Errorf("list awaiting_ack: %w", err)
		}
		for _, p := range page.Items {
			payload, err := json.Marshal(map[string]string{"node_id": p.EntityID.String(), "state": string(p.State)})
			if err != nil {
				return n, err
			}
			env := &bus.Envelope{
				EnvelopeID:    uuid.NewSHA1(p.EntityID, []byte("stuck")),
				CorrelationID: p.CorrelationID,
				EventType:     "ops.registration_stuck",
				Payload:       payload,
			}
			if err := b.PublishEnvelope(ctx, topic, env, bus.WithKey([]byte(p.EntityID.String()))); err != nil {
				return n, fmt.Errorf("publish alert for %s: %w", p.EntityID, err)
			}
			n++
		}
		if page.Next == "" {
			return n, nil
		}
		q.Cursor = page.Next
	}
}

// The example unit-tests alertStuck against a mocked read API and a mocked
// bus: the reader returns two pages, and the bus expects exactly two alerts.
// In a real test, pass the *testing.T to the constructors; an Example has
// none, so it uses exampleT (below), which records failures the same way.
func Example() {
	t := &exampleT{}
	passed := t.run(func() {
		reader := mocks.NewMockRegistrationReader(t)
		eventBus := mocks.NewMockEventBus(t)

		a := &registration.Projection{EntityID: uuid.MustParse("00000000-0000-0000-0000-00000000000a"), State: registration.StateAwaitingAck}
		b := &registration.Projection{EntityID: uuid.MustParse("00000000-0000-0000-0000-00000000000b"), State: registration.StateAwaitingAck}
		first := registration.Query{States: []registration.State{registration.StateAwaitingAck}}
		second := first
		second.Cursor = "after-a"
		reader.EXPECT().List(mock.Anything, first).Return(registration.Page{Items: []*registration.Projection{a}, Next: "after-a"}, nil).Once()
		reader.EXPECT().List(mock.Anything, second).Return(registration.Page{Items: []*registration.Projection{b}}, nil).Once()

		// The fourth matcher stands for the call's options (bus.WithKey).
		isAlert := mock.MatchedBy(func(env *bus.Envelope) bool { return env.EventType == "ops.registration_stuck" })
		eventBus.EXPECT().PublishEnvelope(mock.Anything, "ops.alerts", isAlert, mock.Anything).
			Run(func(_ context.Context, _ string, env *bus.Envelope, _ ...bus.PublishOption) {
				fmt.Printf("alert %s\n", env.Payload)
			}).
			Return(nil).Twice()

		n, err := alertStuck(context.Background(), reader, eventBus, "ops.alerts")
		fmt.Println("published:", n, "error:", err)
	})
	fmt.Println("passed:", passed)
	if !passed {
		fmt.Println(t.report())
	}
	// Output:
	// alert {"node_id":"00000000-0000-0000-0000-00000000000a","state":"awaiting_ack"}
	// alert {"node_id":"00000000-0000-0000-0000-00000000000b","state":"awaiting_ack"}
	// published: 2 error: <nil>
	// passed: true
}

// exampleT is the little of *testing.T that the mocks' constructors use:
// testify's mock.TestingT (Logf, Errorf, FailNow) and Cleanup. It records
// the failures instead of reporting them to a test.
type exampleT struct {
	failures []string
	logs     []string
	cleanups []func()
}

// failNow is what FailNow panics with: run recovers it, as a test ends
// at t.FailNow.
type failNow struct{}

// Logf records a log line; run prints the lines if something failed.
func (t *exampleT) Logf(format string, args ...any) {
	t.logs = append(t.logs, fmt.Sprintf(format, args...))
}

// Errorf records a failure.
func (t *exampleT) Errorf(format string, args ...any) {
	t.failures = append(t.failures, fmt.Sprintf(format, args...))
}

// FailNow stops the function that run runs.
func (t *exampleT) FailNow() { panic(failNow{}) }

// Cleanup registers f for run to call at the end.
func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

// run calls f as the body of a test, stopping it at FailNow, then runs
// the cleanups (the mocks check their expectations there), the last
// registered first. It reports whether nothing failed.
func (t *exampleT) run(f func()) bool {
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(failNow); !ok {
					panic(r)
				}
			}
		}()
		f()
	}()
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
	return len(t.failures) == 0
}

// report returns what the mocks logged and the failures, one a line.
func (t *exampleT) report() string {
	return strings.Join(append(slices.Clone(t.logs), t.failures...), "\n")
}
