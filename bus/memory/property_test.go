package memory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

// propModel is what one property run expects and observes.
type propModel struct {
	mu        sync.Mutex
	fails     map[string]int  // value -> transient failures before success
	poison    map[string]bool // value -> always a content error
	attempts  map[string]int
	acked     map[string]int
	ackOrder  map[string][]int // key -> seq numbers in ack order
	inFlight  map[int32]int
	violation []string
}

func (m *propModel) violate(format string, args ...any) {
	m.violation = append(m.violation, fmt.Sprintf(format, args...))
}

// deliver decides the fate of one delivery: nil, a transient error, or a
// content error.
func (m *propModel) deliver(msg *bus.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := string(msg.Value)
	m.attempts[v]++
	if m.poison[v] {
		return bus.NewContentError(errors.New("poison"))
	}
	if m.attempts[v] <= m.fails[v] {
		return errors.New("transient")
	}
	m.acked[v]++
	if m.acked[v] > 1 {
		m.violate("%s acknowledged %d times", v, m.acked[v])
	}
	if msg.Key != nil {
		s, _ := strconv.Atoi(msg.Headers["seq"])
		m.ackOrder[string(msg.Key)] = append(m.ackOrder[string(msg.Key)], s)
	}
	return nil
}

func (m *propModel) enter(p int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inFlight[p]++
	if m.inFlight[p] > 1 {
		m.violate("two handler calls at once on partition %d", p)
	}
}

func (m *propModel) leave(p int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inFlight[p]--
}

// TestDeliveryProperties publishes random messages (keyed and not, some
// failing transiently, some poison) while members of one group, some with a
// Handler and some with a BatchHandler, join and leave at random. However
// the partitions move, every message must be acknowledged exactly once or
// dead-lettered exactly once, each key's messages in publish order, and no
// partition may be handled by two calls at once.
func TestDeliveryProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		partitions := rapid.Int32Range(1, 4).Draw(rt, "partitions")
		retention := rapid.SampledFrom([]int{3, 1000}).Draw(rt, "retention")
		b, err := memory.New(memory.Config{Partitions: partitions, RetentionMessages: retention,
			// Nobody consumes the dead letters: keep them all.
			Topics: map[string]memory.TopicConfig{"dlq": {RetentionMessages: 1000}}})
		if err != nil {
			rt.Fatal(err)
		}
		defer b.Close()
		m := &propModel{
			fails: map[string]int{}, poison: map[string]bool{}, attempts: map[string]int{},
			acked: map[string]int{}, ackOrder: map[string][]int{}, inFlight: map[int32]int{},
		}
		opts := []bus.SubscribeOption{bus.WithRetryBackoff(time.Millisecond, 2*time.Millisecond), bus.WithDeadLetterTopic("dlq")}
		single := func(ctx context.Context, msg *bus.Message) error {
			m.enter(msg.Partition)
			defer m.leave(msg.Partition)
			return m.deliver(msg)
		}
		batch := func(ctx context.Context, msgs []*bus.Message) error {
			m.enter(msgs[0].Partition)
			defer m.leave(msgs[0].Partition)
			for i, msg := range msgs {
				if err := m.deliver(msg); err != nil {
					return &bus.BatchError{Index: i, Err: err}
				}
			}
			return nil
		}
		type member struct {
			cancel context.CancelFunc
			done   chan error
		}
		var members []member
		// join returns once the member is in the group: with little
		// retention, a group left without members would lose messages by
		// design, so a member may leave only once another has joined.
		join := func() {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			joined := make(chan struct{})
			var once sync.Once
			o := append(slices.Clone(opts), bus.WithOnAssign(func(map[string][]int32) { once.Do(func() { close(joined) }) }))
			if rapid.Bool().Draw(rt, "batch") {
				size := rapid.IntRange(1, 5).Draw(rt, "batchSize")
				o = append(o, bus.WithMaxBatch(size, 0))
				go func() { done <- b.SubscribeBatch(ctx, "g", []string{"t"}, batch, o...) }()
			} else {
				go func() { done <- b.Subscribe(ctx, "g", []string{"t"}, single, o...) }()
			}
			<-joined
			members = append(members, member{cancel, done})
		}
		leave := func(i int) {
			members[i].cancel()
			if err := <-members[i].done; err != nil {
				rt.Fatalf("Subscribe returned %v", err)
			}
			members = slices.Delete(members, i, i+1)
		}
		join()
		var published []*bus.Message
		seqs := map[string]int{}
		n := rapid.IntRange(1, 40).Draw(rt, "messages")
		for i := range n {
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0:
				join()
			case 1:
				if len(members) > 1 {
					leave(rapid.IntRange(0, len(members)-1).Draw(rt, "leaver"))
				}
			}
			v := "v" + strconv.Itoa(i)
			msg := &bus.Message{Topic: "t", Value: []byte(v), Headers: bus.Headers{}}
			if k := rapid.IntRange(-1, 4).Draw(rt, "key"); k >= 0 {
				key := "k" + strconv.Itoa(k)
				msg.Key = []byte(key)
				msg.Headers["seq"] = strconv.Itoa(seqs[key])
				seqs[key]++
			}
			m.mu.Lock()
			m.fails[v] = rapid.SampledFrom([]int{0, 0, 0, 1, 2}).Draw(rt, "fails")
			m.poison[v] = rapid.IntRange(0, 14).Draw(rt, "poison") == 0
			m.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := b.Publish(ctx, msg)
			cancel()
			if err != nil {
				rt.Fatalf("Publish: %v", err)
			}
			published = append(published, msg)
		}
		var poisoned int
		for _, p := range published {
			if m.poison[string(p.Value)] {
				poisoned++
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			m.mu.Lock()
			done := len(m.acked) == len(published)-poisoned
			m.mu.Unlock()
			if done && b.Lag("g") == 0 {
				break
			}
			if time.Now().After(deadline) {
				m.mu.Lock()
				acked := len(m.acked)
				m.mu.Unlock()
				rt.Fatalf("after 10s: %d of %d acknowledged, lag %d", acked, len(published)-poisoned, b.Lag("g"))
			}
			time.Sleep(time.Millisecond)
		}
		for len(members) > 0 {
			leave(0)
		}
		// Every member has left: no handler runs any more.
		if len(m.violation) > 0 {
			rt.Fatalf("%s", m.violation)
		}
		for _, p := range published {
			v := string(p.Value)
			if !m.poison[v] && m.acked[v] != 1 {
				rt.Fatalf("%s acknowledged %d times", v, m.acked[v])
			}
		}
		for k, got := range m.ackOrder {
			// Poison messages leave gaps; the order must still hold.
			if !slices.IsSorted(got) {
				rt.Fatalf("key %s acknowledged in order %v", k, got)
			}
		}
		var dead []string
		for p := range partitions {
			for _, d := range b.Messages("dlq", p) {
				dead = append(dead, string(d.Value))
			}
		}
		slices.Sort(dead)
		var wantDead []string
		for v, p := range m.poison {
			if p {
				wantDead = append(wantDead, v)
			}
		}
		slices.Sort(wantDead)
		if !slices.Equal(dead, wantDead) {
			rt.Fatalf("dead letters %q, want %q", dead, wantDead)
		}
	})
}
