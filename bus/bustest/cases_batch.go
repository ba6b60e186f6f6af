package bustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/registrar-go/registrar/bus"
)

// batches records the batches a BatchHandler got, as clones.
type batches struct {
	mu   sync.Mutex
	list [][]*bus.Message
}

func (b *batches) add(msgs []*bus.Message) int {
	c := make([]*bus.Message, len(msgs))
	for i, m := range msgs {
		c[i] = m.Clone()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.list = append(b.list, c)
	return len(b.list) - 1
}

func (b *batches) all() [][]*bus.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.list)
}

// values returns the values of every batch, flattened.
func (b *batches) values() []string {
	var vs []string
	for _, batch := range b.all() {
		for _, m := range batch {
			vs = append(vs, string(m.Value))
		}
	}
	return vs
}

func seqValues(tag string, from, to int) []string {
	var vs []string
	for i := from; i < to; i++ {
		vs = append(vs, fmt.Sprintf("%s-%d", tag, i))
	}
	return vs
}

func indexOf(batch []*bus.Message, value string) int {
	return slices.IndexFunc(batch, func(m *bus.Message) bool { return string(m.Value) == value })
}

func testBatchBounds(e *env) {
	t := e.t
	topic := e.topic()
	e.publish(keyed(topic, "m", 100, 1)...)
	var got batches
	x := newExclusive(t)
	e.subscribeBatch(e.name("group"), []string{topic}, func(ctx context.Context, msgs []*bus.Message) error {
		if len(msgs) == 0 {
			t.Errorf("empty batch")
			return nil
		}
		x.enter(msgs[0])
		defer x.leave(msgs[0])
		got.add(msgs)
		return nil
	}, bus.WithMaxBatch(10, 0))
	e.eventually("100 messages in batches", func() bool { return len(got.values()) >= 100 })
	if vs, want := got.values(), seqValues("m", 0, 100); !slices.Equal(vs, want) {
		t.Errorf("batches delivered %q, want %q", vs, want)
	}
	bigger := false
	var last int64 = -1
	for i, batch := range got.all() {
		if len(batch) > 10 {
			t.Errorf("batch %d has %d messages, above WithMaxBatch(10)", i, len(batch))
		}
		bigger = bigger || len(batch) > 1
		for _, m := range batch {
			if m.Partition != batch[0].Partition || m.Topic != topic {
				t.Errorf("batch %d mixes %s/%d with %s/%d", i, m.Topic, m.Partition, batch[0].Topic, batch[0].Partition)
			}
			if m.Offset <= last {
				t.Errorf("batch %d: offset %d after %d", i, m.Offset, last)
			}
			last = m.Offset
		}
	}
	if !bigger {
		t.Errorf("100 waiting messages came in batches of one")
	}
}

// failOnce returns a BatchHandler that records batches and, the first time
// a batch holds the value fail, returns mkErr(index of it in the batch).
func failOnce(got *batches, fail string, mkErr func(i int) error) (bus.BatchHandler, func() int) {
	var mu sync.Mutex
	failedBatch := -1
	h := func(_ context.Context, msgs []*bus.Message) error {
		n := got.add(msgs)
		mu.Lock()
		defer mu.Unlock()
		if i := indexOf(msgs, fail); i >= 0 && failedBatch < 0 {
			failedBatch = n
			return mkErr(i)
		}
		return nil
	}
	return h, func() int {
		mu.Lock()
		defer mu.Unlock()
		return failedBatch
	}
}

// checkRedelivery checks that the flattened deliveries are the batches up
// to and including the failed one, then exactly want.
func checkRedelivery(e *env, got *batches, failed int, want []string, why string) {
	e.t.Helper()
	all := got.all()
	if failed < 0 || failed >= len(all)-1 {
		e.t.Fatalf("no batch after the failed one (failed %d of %d)", failed, len(all))
	}
	var head []string
	for _, batch := range all[:failed+1] {
		for _, m := range batch {
			head = append(head, string(m.Value))
		}
	}
	var prefix []string
	for _, v := range seqValues("m", 0, 30) {
		if len(prefix) == len(head) {
			break
		}
		prefix = append(prefix, v)
	}
	if !slices.Equal(head, prefix) {
		e.t.Errorf("batches up to the failed one delivered %q, want %q", head, prefix)
	}
	vs := got.values()[len(head):]
	if !slices.Equal(vs, want) {
		e.t.Errorf("after the failed batch, delivered %q, want %q (%s)", vs, want, why)
	}
}

func testBatchPartialAck(e *env) {
	topic := e.topic()
	e.publish(keyed(topic, "m", 30, 1)...)
	var got batches
	h, failed := failOnce(&got, "m-5", func(i int) error {
		return &bus.BatchError{Index: i, Err: errors.New("bustest: transient failure")}
	})
	e.subscribeBatch(e.name("group"), []string{topic}, h,
		bus.WithMaxBatch(10, 0), bus.WithRetryBackoff(5*time.Millisecond, 10*time.Millisecond))
	e.eventually("the last message", func() bool { return slices.Contains(got.values(), "m-29") })
	checkRedelivery(e, &got, failed(), seqValues("m", 5, 30),
		"the messages before the BatchError index are acknowledged, the failed one and all after it redelivered")
}

func testBatchContentError(e *env) {
	t := e.t
	ts := e.topics(2)
	topic, dlq := ts[0], ts[1]
	msgs := keyed(topic, "m", 30, 1)
	e.publish(msgs...)
	var got batches
	h, failed := failOnce(&got, "m-5", func(i int) error {
		return &bus.BatchError{Index: i, Err: bus.NewContentError(errors.New("bustest: bad payload"))}
	})
	group := e.name("group")
	e.subscribeBatch(group, []string{topic}, h, bus.WithMaxBatch(10, 0), bus.WithDeadLetterTopic(dlq))
	var dead inbox
	e.subscribe(e.name("dlq-reader"), []string{dlq}, collect(&dead))
	e.eventually("the last message", func() bool { return slices.Contains(got.values(), "m-29") })
	checkRedelivery(e, &got, failed(), seqValues("m", 6, 30),
		"a content error at the BatchError index dead-letters that message and goes on after it")
	e.eventually("the dead letter", func() bool { return dead.len() >= 1 })
	d := dead.all()[0]
	if string(d.Value) != "m-5" || d.Headers[bus.HeaderDLQOriginalTopic] != topic ||
		d.Headers[bus.HeaderDLQOriginalOffset] != strconv.FormatInt(msgs[5].Offset, 10) ||
		d.Headers[bus.HeaderDLQConsumerGroup] != group {
		t.Errorf("dead letter %q with headers %v, want m-5 from %s offset %d group %s", d.Value, d.Headers, topic, msgs[5].Offset, group)
	}
}

func testBatchWholeError(e *env) {
	topic := e.topic()
	e.publish(keyed(topic, "m", 30, 1)...)
	var got batches
	h, failed := failOnce(&got, "m-0", func(int) error { return errors.New("bustest: whole batch failed") })
	e.subscribeBatch(e.name("group"), []string{topic}, h,
		bus.WithMaxBatch(10, 0), bus.WithRetryBackoff(5*time.Millisecond, 10*time.Millisecond))
	e.eventually("the last message", func() bool { return slices.Contains(got.values(), "m-29") })
	checkRedelivery(e, &got, failed(), seqValues("m", 0, 30), "an error that is not a BatchError redelivers the whole batch")
}
