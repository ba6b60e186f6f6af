package mocks_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/mocks"
	"github.com/registrar-go/registrar/reducer"
	"github.com/registrar-go/registrar/reducer/registration"
)

// Each mock implements the interface it stands for.
var (
	_ bus.EventBus                                   = (*mocks.MockEventBus)(nil)
	_ bus.PartitionReader                            = (*mocks.MockPartitionReader)(nil)
	_ intent.IntentEffect                            = (*mocks.MockIntentEffect)(nil)
	_ reducer.Reducer[*registration.Projection]      = (*mocks.MockReducer[*registration.Projection])(nil)
	_ registrar.StateStore[*registration.Projection] = (*mocks.MockStateStore[*registration.Projection])(nil)
	_ registration.Store                             = (*mocks.MockRegistrationStore)(nil)
	_ registration.Reader                            = (*mocks.MockRegistrationReader)(nil)
)

var (
	nodeA = uuid.MustParse("00000000-0000-0000-0000-00000000000a")
	nodeB = uuid.MustParse("00000000-0000-0000-0000-00000000000b")
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func TestMockEventBus(t *testing.T) {
	ctx := context.Background()
	b := mocks.NewMockEventBus(t)

	// Publish: the messages reach the mock as one slice; RunAndReturn sets
	// the offsets as a bus does.
	m1 := &bus.Message{Topic: "t", Key: []byte("a"), Value: []byte("1")}
	m2 := &bus.Message{Topic: "t", Key: []byte("b"), Value: []byte("2")}
	b.EXPECT().Publish(mock.Anything, []*bus.Message{m1, m2}).
		RunAndReturn(func(_ context.Context, msgs ...*bus.Message) error {
			for i, m := range msgs {
				m.Offset = int64(10 + i)
			}
			return nil
		}).Once()
	if err := b.Publish(ctx, m1, m2); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if m1.Offset != 10 || m2.Offset != 11 {
		t.Errorf("offsets = %d, %d; want 10, 11", m1.Offset, m2.Offset)
	}

	// Subscribe: Run hands the handler a message, as a bus would.
	delivered := &bus.Message{Topic: "in", Value: []byte("hello")}
	b.EXPECT().Subscribe(mock.Anything, "group", []string{"in"}, mock.Anything).
		Run(func(ctx context.Context, _ string, _ []string, h bus.Handler, _ ...bus.SubscribeOption) {
			if err := h(ctx, delivered); err != nil {
				t.Errorf("handler: %v", err)
			}
		}).
		Return(nil).Once()
	var got []string
	err := b.Subscribe(ctx, "group", []string{"in"}, func(_ context.Context, m *bus.Message) error {
		got = append(got, string(m.Value))
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"hello"}) {
		t.Errorf("Subscribe = %v, handled %q; want nil, [hello]", err, got)
	}

	// Close: the first call succeeds, later ones return ErrClosed.
	b.EXPECT().Close().Return(nil).Once()
	b.EXPECT().Close().Return(bus.ErrClosed)
	if err := b.Close(); err != nil {
		t.Errorf("first Close = %v, want nil", err)
	}
	if err := b.Close(); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

// TestMockEventBusOptions pins what .mockery.yml's unroll-variadic: false
// means for the options: one matcher after the fixed arguments stands for
// all of them, and an expectation without it does not match a call with
// options.
func TestMockEventBusOptions(t *testing.T) {
	env := &bus.Envelope{EventType: "e"}
	b := mocks.NewMockEventBus(t)
	b.EXPECT().PublishEnvelope(mock.Anything, "t", env, mock.Anything).Return(nil).Once()
	if err := b.PublishEnvelope(context.Background(), "t", env, bus.WithKey([]byte("k")), bus.WithHeaders(bus.Headers{"h": "v"})); err != nil {
		t.Fatalf("PublishEnvelope with options: %v", err)
	}

	ft := &exampleT{}
	passed := ft.run(func() {
		b := mocks.NewMockEventBus(ft)
		b.EXPECT().PublishEnvelope(mock.Anything, "t", env).Return(nil).Maybe()
		_ = b.PublishEnvelope(context.Background(), "t", env, bus.WithKey([]byte("k")))
		ft.Errorf("the call with an option matched an expectation without one")
	})
	if passed || !strings.Contains(ft.report(), "mock: Unexpected Method Call") {
		t.Errorf("a call with options against an expectation without: passed %v, failures %q", passed, ft.failures)
	}
}

func TestMockPartitionReader(t *testing.T) {
	ctx := context.Background()
	r := mocks.NewMockPartitionReader(t)
	r.EXPECT().PartitionCount(mock.Anything, "in").Return(int32(4), nil).Once()
	r.EXPECT().ReadPartition(mock.Anything, "in", int32(3), mock.Anything, mock.Anything).
		RunAndReturn(func(ctx context.Context, topic string, p int32, h bus.Handler, opts ...bus.ReadOption) error {
			if !bus.NewReadConfig(opts...).FromOldest {
				return errors.New("not read from the oldest")
			}
			for off := range int64(2) {
				if err := h(ctx, &bus.Message{Topic: topic, Partition: p, Offset: off}); err != nil {
					return err
				}
			}
			return nil
		}).Once()

	n, err := r.PartitionCount(ctx, "in")
	if err != nil || n != 4 {
		t.Fatalf("PartitionCount = %d, %v; want 4, nil", n, err)
	}
	var offsets []int64
	err = r.ReadPartition(ctx, "in", n-1, func(_ context.Context, m *bus.Message) error {
		offsets = append(offsets, m.Offset)
		return nil
	}, bus.ReadFromOldest())
	if err != nil || !slices.Equal(offsets, []int64{0, 1}) {
		t.Errorf("ReadPartition = %v, offsets %v; want nil, [0 1]", err, offsets)
	}
}

// TestMockIntentEffect runs mocked effects through the project's own
// intent.Executor: a Conflict stops ExecuteAll, so the second effect is
// never called (it has no expectation: a call would fail the test).
func TestMockIntentEffect(t *testing.T) {
	upsert := mocks.NewMockIntentEffect(t)
	consul := mocks.NewMockIntentEffect(t)
	exec := intent.NewExecutor()
	if err := exec.Register("postgres.upsert", upsert); err != nil {
		t.Fatal(err)
	}
	if err := exec.Register("consul.register", consul); err != nil {
		t.Fatal(err)
	}

	isNodeA := mock.MatchedBy(func(in intent.Intent) bool { return in.Target == nodeA.String() })
	upsert.EXPECT().Execute(mock.Anything, isNodeA).
		Return(intent.Result{Status: intent.Conflict, Reason: "state moved"}, nil).Once()

	results, err := exec.ExecuteAll(context.Background(), []intent.Intent{
		{Type: "postgres.upsert", Target: nodeA.String()},
		{Type: "consul.register", Target: nodeA.String()},
	})
	if err != nil {
		t.Fatalf("ExecuteAll: %v", err)
	}
	if len(results) != 1 || results[0].Status != intent.Conflict || results[0].Reason != "state moved" {
		t.Errorf("results = %+v, want one conflict", results)
	}

	// An error the effect returns reaches the caller as it is.
	permanent := intent.Permanent(errors.New("bad payload"))
	upsert.EXPECT().Execute(mock.Anything, mock.Anything).Return(intent.Result{}, permanent).Once()
	if _, err := exec.Execute(context.Background(), intent.Intent{Type: "postgres.upsert"}); !intent.IsPermanent(err) {
		t.Errorf("Execute = %v, want the permanent error", err)
	}
}

// decide is code that works on any reducer and state store, as the
// runtime does: decode, load the entity's state, decide.
func decide[S any](ctx context.Context, r reducer.Reducer[S], store registrar.StateStore[S], topic string, env *bus.Envelope, now time.Time) (reducer.Decision, error) {
	in, err := r.Decode(topic, env)
	if err != nil {
		return reducer.Decision{}, fmt.Errorf("decode: %w", err)
	}
	state, err := store.Load(ctx, in.EntityID)
	if err != nil {
		return reducer.Decision{}, fmt.Errorf("load: %w", err)
	}
	return r.Decide(state, in, now), nil
}

// TestMockReducerAndStateStore instantiates the generic mocks with the
// registration workflow's state, *registration.Projection.
func TestMockReducerAndStateStore(t *testing.T) {
	red := mocks.NewMockReducer[*registration.Projection](t)
	store := mocks.NewMockStateStore[*registration.Projection](t)

	env := &bus.Envelope{EventType: "heartbeat", EnvelopeTimestamp: t0}
	in := reducer.Input{EntityID: nodeA, Kind: "heartbeat", Event: &registration.Heartbeat{NodeID: nodeA}, Envelope: env}
	active := &registration.Projection{EntityID: nodeA, State: registration.StateActive}
	red.EXPECT().Decode("registrations", env).Return(in, nil).Once()
	store.EXPECT().Load(mock.Anything, nodeA).Return(active, nil).Once()
	red.EXPECT().Decide(active, in, t0).
		RunAndReturn(func(p *registration.Projection, _ reducer.Input, _ time.Time) reducer.Decision {
			return reducer.Decision{State: string(p.State), Reason: "heartbeat recorded"}
		}).Once()

	d, err := decide(context.Background(), red, store, "registrations", env, t0)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != "active" || d.Reason != "heartbeat recorded" {
		t.Errorf("decision = %+v", d)
	}

	// No state yet: the store returns the zero S, a nil projection, and
	// Decide gets exactly that.
	store.EXPECT().Load(mock.Anything, nodeB).Return(nil, nil).Once()
	got, err := store.Load(context.Background(), nodeB)
	if err != nil || got != nil {
		t.Errorf("Load of an unknown entity = %v, %v; want nil, nil", got, err)
	}

	// A decode error stops decide before the store is read.
	red.EXPECT().Decode("registrations", mock.Anything).Return(reducer.Input{}, errors.New("unknown event type")).Once()
	if _, err := decide(context.Background(), red, store, "registrations", &bus.Envelope{}, t0); err == nil || !strings.HasPrefix(err.Error(), "decode:") {
		t.Errorf("decide with a bad envelope = %v, want a decode error", err)
	}
}

func TestMockRegistrationStore(t *testing.T) {
	ctx := context.Background()
	s := mocks.NewMockRegistrationStore(t)
	page1 := []registration.Overdue{{EntityID: nodeA, Deadline: t0}}
	s.EXPECT().OverdueAcks(mock.Anything, t0, registration.Overdue{}, 1).Return(page1, nil).Once()
	s.EXPECT().OverdueAcks(mock.Anything, t0, page1[0], 1).Return(nil, nil).Once()
	s.EXPECT().OverdueLiveness(mock.Anything, t0, registration.Overdue{}, 1).Return(nil, errors.New("connection refused")).Once()
	s.EXPECT().Load(mock.Anything, nodeA).Return(&registration.Projection{EntityID: nodeA, State: registration.StateAwaitingAck}, nil).Once()

	// Page through the overdue acks as the sweeper does, one at a time.
	var seen []uuid.UUID
	after := registration.Overdue{}
	for {
		page, err := s.OverdueAcks(ctx, t0, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page {
			seen = append(seen, o.EntityID)
		}
		if len(page) < 1 {
			break
		}
		after = page[len(page)-1]
	}
	if !slices.Equal(seen, []uuid.UUID{nodeA}) {
		t.Errorf("overdue acks = %v, want [%v]", seen, nodeA)
	}
	if _, err := s.OverdueLiveness(ctx, t0, registration.Overdue{}, 1); err == nil {
		t.Error("OverdueLiveness: want the error")
	}
	if p, err := s.Load(ctx, nodeA); err != nil || p.State != registration.StateAwaitingAck {
		t.Errorf("Load = %+v, %v", p, err)
	}
}

func TestMockRegistrationReader(t *testing.T) {
	ctx := context.Background()
	r := mocks.NewMockRegistrationReader(t)
	r.EXPECT().Get(mock.Anything, nodeB).Return(nil, fmt.Errorf("get %s: %w", nodeB, registration.ErrNotFound)).Once()
	r.EXPECT().CountByState(mock.Anything).Return(map[registration.State]int{registration.StateActive: 3}, nil).Once()
	q := registration.Query{NodeType: "effect", Limit: 10}
	r.EXPECT().List(mock.Anything, q).Return(registration.Page{Items: []*registration.Projection{{EntityID: nodeA}}}, nil).Once()

	if _, err := r.Get(ctx, nodeB); !errors.Is(err, registration.ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
	counts, err := r.CountByState(ctx)
	if err != nil || counts[registration.StateActive] != 3 || len(counts) != 1 {
		t.Errorf("CountByState = %v, %v", counts, err)
	}
	page, err := r.List(ctx, q)
	if err != nil || len(page.Items) != 1 || page.Items[0].EntityID != nodeA || page.Next != "" {
		t.Errorf("List = %+v, %v", page, err)
	}
}

// TestUnmetExpectationFails shows that a mock fails its test at the end
// when an expected call was not made, and names the call.
func TestUnmetExpectationFails(t *testing.T) {
	ft := &exampleT{}
	passed := ft.run(func() {
		r := mocks.NewMockRegistrationReader(ft)
		r.EXPECT().CountByState(mock.Anything).Return(nil, nil).Once()
		// The code under test forgets to call CountByState.
	})
	if passed {
		t.Fatal("a mock whose expected call was not made passed")
	}
	all := ft.report()
	if !strings.Contains(all, "CountByState") || !strings.Contains(all, "0 out of 1 expectation(s) were met") {
		t.Errorf("the failure does not name the missing call:\n%s", all)
	}
}

// TestUnexpectedCallFails shows that a call no expectation matches fails
// the test at once (FailNow), so the code after it does not run.
func TestUnexpectedCallFails(t *testing.T) {
	ft := &exampleT{}
	reached := false
	passed := ft.run(func() {
		s := mocks.NewMockStateStore[*registration.Projection](ft)
		s.EXPECT().Load(mock.Anything, nodeA).Return(nil, nil).Maybe()
		_, _ = s.Load(context.Background(), nodeB)
		reached = true
	})
	if passed || reached {
		t.Fatalf("a call with unexpected arguments: passed %v, went on %v; want false, false", passed, reached)
	}
	if all := ft.report(); !strings.Contains(all, "Load") || !strings.Contains(all, nodeB.String()) {
		t.Errorf("the failure does not name the call:\n%s", all)
	}
}

// TestExampleTRecords checks the fake T the other tests rely on: with every
// expectation met, run passes and records nothing.
func TestExampleTRecords(t *testing.T) {
	ft := &exampleT{}
	passed := ft.run(func() {
		e := mocks.NewMockIntentEffect(ft)
		e.EXPECT().Execute(mock.Anything, mock.Anything).Return(intent.Result{}, nil).Once()
		if _, err := e.Execute(context.Background(), intent.Intent{}); err != nil {
			ft.Errorf("Execute: %v", err)
		}
	})
	if !passed || len(ft.failures) != 0 || len(ft.cleanups) != 0 {
		t.Errorf("passed %v, failures %q, cleanups left %d; want true, none, 0", passed, ft.failures, len(ft.cleanups))
	}
}
