package bustest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/bus"
)

// partReader is a ReadPartition call running in its own goroutine.
type partReader struct {
	e       *env
	in      inbox
	cancel  context.CancelFunc
	started chan struct{} // closed when Started was called
	start   int64         // valid once started is closed
	next    int64
	calls   atomic.Int32 // Started calls
	done    chan struct{}
	err     error // valid once done is closed
}

// partitionReader returns the bus as a bus.PartitionReader.
func (e *env) partitionReader() bus.PartitionReader {
	e.t.Helper()
	pr, ok := e.b.(bus.PartitionReader)
	if !ok {
		e.t.Fatalf("%T does not implement bus.PartitionReader", e.b)
	}
	return pr
}

// partitionCount returns topic's partition count, checking it against
// Features.Partitions.
func (e *env) partitionCount(topic string) int32 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, e.f.timeout())
	defer cancel()
	n, err := e.partitionReader().PartitionCount(ctx, topic)
	if err != nil {
		e.t.Fatalf("PartitionCount(%q): %v", topic, err)
	}
	if n <= 0 || e.f.Partitions > 0 && n != e.f.Partitions {
		e.t.Fatalf("PartitionCount(%q) = %d, want %d", topic, n, e.f.Partitions)
	}
	return n
}

// read starts ReadPartition in a goroutine, collecting the messages in
// the reader's inbox; the case's cleanup stops it.
func (e *env) read(topic string, partition int32, opts ...bus.ReadOption) *partReader {
	r := e.newPartReader()
	r.run(topic, partition, collect(&r.in), opts...)
	return r
}

// newPartReader returns a reader that is not running yet.
func (e *env) newPartReader() *partReader {
	return &partReader{e: e, started: make(chan struct{}), done: make(chan struct{})}
}

// run starts ReadPartition in a goroutine, handing messages to h; the case's
// cleanup stops it.
func (r *partReader) run(topic string, partition int32, h bus.Handler, opts ...bus.ReadOption) {
	e := r.e
	pr := e.partitionReader()
	ctx, cancel := context.WithCancel(e.ctx)
	r.cancel = cancel
	opts = append(opts, bus.WithReadStarted(func(start, next int64) {
		if r.calls.Add(1) == 1 {
			r.start, r.next = start, next
			close(r.started)
		}
	}))
	go func() {
		defer close(r.done)
		r.err = pr.ReadPartition(ctx, topic, partition, h, opts...)
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(e.f.timeout()):
			e.t.Errorf("ReadPartition did not return within %v of its context ending", e.f.timeout())
		}
	})
}

// waitStarted waits until the read is positioned.
func (r *partReader) waitStarted() {
	r.e.t.Helper()
	select {
	case <-r.started:
	case <-r.done:
		r.e.t.Fatalf("ReadPartition returned before Started: %v", r.err)
	case <-time.After(r.e.f.timeout()):
		r.e.t.Fatalf("timed out after %v waiting for Started", r.e.f.timeout())
	}
}

// stop cancels the read and checks that ReadPartition returned nil.
func (r *partReader) stop() {
	r.e.t.Helper()
	r.cancel()
	r.e.wait("ReadPartition to return after its context ended", r.done)
	if r.err != nil {
		r.e.t.Fatalf("ReadPartition returned %v after its context ended, want nil", r.err)
	}
}

// returned waits for ReadPartition to return on its own and returns its
// result.
func (r *partReader) returned() error {
	r.e.t.Helper()
	r.e.wait("ReadPartition to return", r.done)
	return r.err
}

// onPartition returns n messages for topic whose keys all land on partition
// p of parts, values "<tag>-<i>".
func onPartition(topic, tag string, p, parts int32, n int) []*bus.Message {
	key := keyOn(p, parts, 0)
	msgs := make([]*bus.Message, n)
	for i := range msgs {
		msgs[i] = &bus.Message{Topic: topic, Key: key, Value: fmt.Appendf(nil, "%s-%d", tag, i)}
	}
	return msgs
}

// keyOn returns the first key "rk-<i>", i >= from, that lands on partition p.
func keyOn(p, parts int32, from int) []byte {
	for i := from; ; i++ {
		k := []byte("rk-" + strconv.Itoa(i))
		if bus.KeyPartition(k, parts) == p {
			return k
		}
	}
}

// checkRead checks that the reader handed exactly want, in order, each at
// an offset at or after its start, all on the partition, in increasing
// offsets. Callers wait first for the last message of want.
func (r *partReader) checkRead(topic string, partition int32, want []*bus.Message) {
	r.e.t.Helper()
	t := r.e.t
	got := r.in.all()
	if len(got) != len(want) {
		t.Errorf("reader handed %d messages, want %d: %q", len(got), len(want), r.in.values())
	}
	last := int64(-1)
	for i, m := range got {
		if m.Topic != topic || m.Partition != partition {
			t.Errorf("message %q handed from %s/%d, want %s/%d", m.Value, m.Topic, m.Partition, topic, partition)
		}
		if m.Offset < r.start {
			t.Errorf("message %q at offset %d, before the start offset %d", m.Value, m.Offset, r.start)
		}
		if m.Offset <= last {
			t.Errorf("message %q at offset %d after offset %d", m.Value, m.Offset, last)
		}
		last = m.Offset
		if i < len(want) && string(m.Value) != string(want[i].Value) {
			t.Errorf("message %d is %q, want %q", i, m.Value, want[i].Value)
		}
	}
}

// sentinel publishes one more message to the partition and waits until the
// reader handed it: whatever else the reader was to hand before it (a
// duplicate, a message it should have dropped) it has handed by then.
func (e *env) sentinel(readers []*partReader, msg *bus.Message) {
	e.t.Helper()
	e.publish(msg)
	for _, r := range readers {
		e.eventually("the sentinel message", func() bool {
			all := r.in.all()
			return len(all) > 0 && string(all[len(all)-1].Value) == string(msg.Value)
		})
	}
}

func testReadNewest(e *env) {
	t := e.t
	topic := e.topic()
	n := e.partitionCount(topic)
	p := bus.KeyPartition([]byte("newest"), n)
	before := onPartition(topic, "before", p, n, 20)
	e.publish(before...)

	r := e.read(topic, p)
	r.waitStarted()
	if r.start != r.next {
		t.Errorf("a read from the newest offset started with start %d, next %d; want them equal", r.start, r.next)
	}
	if last := before[len(before)-1].Offset; r.start <= last {
		t.Errorf("start offset %d, but offset %d was published before the read started", r.start, last)
	}
	after := onPartition(topic, "after", p, n, 50)
	e.publish(after...)
	end := onPartition(topic, "end", p, n, 1)[0]
	e.sentinel([]*partReader{r}, end)
	r.checkRead(topic, p, append(after, end))
	if c := r.calls.Load(); c != 1 {
		t.Errorf("Started called %d times, want once", c)
	}
	r.stop()
}

// testReadStartedRace starts readers again and again while the partition
// is busy, and publishes a message right after each Started: every reader
// must hand its message.
func testReadStartedRace(e *env) {
	t := e.t
	topic := e.topic()
	n := e.partitionCount(topic)
	p := bus.KeyPartition([]byte("race"), n)
	key := keyOn(p, n, 0)

	// Noise on the partition, so that readers join a feed in motion.
	ctx, cancel := context.WithCancel(e.ctx)
	noiseDone := make(chan struct{})
	go func() {
		defer close(noiseDone)
		for i := 0; ctx.Err() == nil; i++ {
			if err := e.b.Publish(ctx, &bus.Message{Topic: topic, Key: key, Value: fmt.Appendf(nil, "noise-%d", i)}); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() {
		cancel()
		<-noiseDone
	}()

	const rounds = 30
	var live []*partReader
	for i := range rounds {
		if i%3 == 0 {
			// Now and then no reader is left: the next starts afresh.
			for _, r := range live {
				r.stop()
			}
			live = nil
		}
		r := e.read(topic, p)
		r.waitStarted()
		mark := &bus.Message{Topic: topic, Key: key, Value: fmt.Appendf(nil, "mark-%d", i)}
		e.publish(mark)
		if mark.Partition != p {
			t.Fatalf("marker landed on partition %d, want %d", mark.Partition, p)
		}
		if mark.Offset < r.start {
			t.Fatalf("round %d: a message published after Started got offset %d, below the start offset %d", i, mark.Offset, r.start)
		}
		e.eventually(fmt.Sprintf("round %d's marker", i), func() bool {
			for _, m := range r.in.all() {
				if string(m.Value) == string(mark.Value) {
					return true
				}
			}
			return false
		})
		last := int64(-1)
		for _, m := range r.in.all() {
			if m.Offset < r.start || m.Offset <= last {
				t.Fatalf("round %d: offset %d handed after %d, start %d", i, m.Offset, last, r.start)
			}
			last = m.Offset
		}
		live = append(live, r)
	}
}

func testReadFromOldest(e *env) {
	t := e.t
	topic := e.topic()
	n := e.partitionCount(topic)
	p := bus.KeyPartition([]byte("oldest"), n)
	before := onPartition(topic, "before", p, n, 30)
	e.publish(before...)

	caughtUp := make(chan struct{})
	var once sync.Once
	r := e.newPartReader()
	var afterStarted atomic.Bool
	h := func(_ context.Context, m *bus.Message) error {
		r.in.add(m)
		select {
		case <-r.started:
		default:
			afterStarted.Store(true) // Started must come first
		}
		if m.Offset == r.next-1 {
			once.Do(func() { close(caughtUp) })
		}
		return nil
	}
	r.run(topic, p, h, bus.ReadFromOldest())
	r.waitStarted()
	if r.start != before[0].Offset || r.next != before[len(before)-1].Offset+1 {
		t.Errorf("Started(%d, %d), want (%d, %d): the oldest offset and the high-water mark", r.start, r.next, before[0].Offset, before[len(before)-1].Offset+1)
	}
	e.wait("the reader to catch up (offset next-1)", caughtUp)
	if afterStarted.Load() {
		t.Errorf("a message was handed before Started was called")
	}
	if got := r.in.len(); got != len(before) {
		t.Errorf("caught up after %d messages, want %d", got, len(before))
	}
	after := onPartition(topic, "after", p, n, 10)
	e.publish(after...)
	end := onPartition(topic, "end", p, n, 1)[0]
	e.sentinel([]*partReader{r}, end)
	r.checkRead(topic, p, append(append(before, after...), end))
	r.stop()

	// A fresh partition: start == next, caught up at once.
	empty := e.topic()
	e.partitionCount(empty)
	r2 := e.read(empty, 0, bus.ReadFromOldest())
	r2.waitStarted()
	if r2.start != r2.next {
		t.Errorf("a read from the oldest of an empty partition: Started(%d, %d), want start == next", r2.start, r2.next)
	}
	msg := &bus.Message{Topic: empty, Key: keyOn(0, n, 0), Value: []byte("first")}
	e.sentinel([]*partReader{r2}, msg)
	r2.checkRead(empty, 0, []*bus.Message{msg})
}

func testReadOnlyItsPartition(e *env) {
	t := e.t
	topic := e.topic()
	n := e.partitionCount(topic)
	const keys, total = 60, 200 // within a retention of 100 messages per partition
	readers := make([]*partReader, n)
	for p := range n {
		readers[p] = e.read(topic, p)
	}
	for _, r := range readers {
		r.waitStarted()
	}
	msgs := keyed(topic, "part", total, keys)
	e.publish(msgs...)
	want := make([][]*bus.Message, n)
	for _, m := range msgs {
		p := bus.KeyPartition(m.Key, n)
		if m.Partition != p {
			t.Errorf("key %q landed on partition %d, KeyPartition says %d", m.Key, m.Partition, p)
		}
		want[p] = append(want[p], m)
	}
	for p, r := range readers {
		e.sentinel([]*partReader{r}, &bus.Message{Topic: topic, Key: keyOn(int32(p), n, 0), Value: []byte("end-" + strconv.Itoa(p))})
	}
	for p, r := range readers {
		w := append(append([]*bus.Message(nil), want[p]...), &bus.Message{Value: []byte("end-" + strconv.Itoa(p))})
		r.checkRead(topic, int32(p), w)
		for _, m := range r.in.all() {
			if m.Key != nil && bus.KeyPartition(m.Key, n) != int32(p) {
				t.Errorf("reader of partition %d handed key %q, which lands on %d", p, m.Key, bus.KeyPartition(m.Key, n))
			}
		}
	}
}

func testReadManyReadersSamePartition(e *env) {
	topic := e.topic()
	n := e.partitionCount(topic)
	p := bus.KeyPartition([]byte("many"), n)
	const newest, oldest = 50, 3
	var readers []*partReader
	for i := range newest + oldest {
		var opts []bus.ReadOption
		if i >= newest {
			opts = append(opts, bus.ReadFromOldest())
		}
		readers = append(readers, e.read(topic, p, opts...))
	}
	for _, r := range readers {
		r.waitStarted()
	}
	msgs := onPartition(topic, "many", p, n, 40)
	e.publish(msgs...)
	end := onPartition(topic, "end", p, n, 1)[0]
	e.sentinel(readers, end)
	for _, r := range readers {
		r.checkRead(topic, p, append(msgs, end))
	}
	// Half of them leave; the others go on.
	for _, r := range readers[:newest/2] {
		r.stop()
	}
	more := onPartition(topic, "more", p, n, 10)
	e.publish(more...)
	end2 := onPartition(topic, "end2", p, n, 1)[0]
	e.sentinel(readers[newest/2:], end2)
	for _, r := range readers[newest/2:] {
		r.checkRead(topic, p, append(append(append(msgs, end), more...), end2))
	}
}

func testReadHandlerError(e *env) {
	t := e.t
	topic := e.topic()
	n := e.partitionCount(topic)
	p := bus.KeyPartition([]byte("fail"), n)
	boom := errors.New("boom")
	for _, fail := range []error{boom, bus.NewContentError(boom)} {
		var handled atomic.Int32
		var hctx atomic.Value
		h := func(ctx context.Context, m *bus.Message) error {
			hctx.Store(ctx)
			if handled.Add(1) == 3 {
				return fail
			}
			return nil
		}
		r := e.newPartReader()
		r.run(topic, p, h)
		r.waitStarted()
		e.publish(onPartition(topic, "fail", p, n, 6)...)
		err := r.returned()
		if !errors.Is(err, boom) {
			t.Errorf("ReadPartition returned %v after its handler returned %v, want that error wrapped", err, fail)
		}
		if bus.IsContentError(fail) && !bus.IsContentError(err) {
			t.Errorf("ReadPartition returned %v, which does not wrap the handler's content error", err)
		}
		if got := handled.Load(); got != 3 {
			t.Errorf("handler called %d times, want 3: the read stops at the failing message", got)
		}
		if ctx, _ := hctx.Load().(context.Context); ctx == nil || ctx.Err() == nil {
			t.Errorf("the handler's context did not end when ReadPartition returned")
		}
	}
}

func testReadContextCancel(e *env) {
	t := e.t
	topic := e.topic()
	n := e.partitionCount(topic)
	pr := e.partitionReader()
	nop := func(context.Context, *bus.Message) error { return nil }
	for _, bad := range []int32{-1, n} {
		done := make(chan error, 1)
		go func() { done <- pr.ReadPartition(e.ctx, topic, bad, nop) }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("ReadPartition of partition %d of %d returned nil, want an error", bad, n)
			}
		case <-time.After(e.f.timeout()):
			t.Fatalf("ReadPartition of partition %d of %d did not return", bad, n)
		}
	}
	if err := pr.ReadPartition(e.ctx, "", 0, nop); err == nil {
		t.Errorf("ReadPartition of topic \"\" returned nil, want an error")
	}
	if _, err := pr.PartitionCount(e.ctx, ""); err == nil {
		t.Errorf("PartitionCount of topic \"\" returned nil error")
	}

	// A handler busy when the context ends sees its context end; the read
	// returns nil.
	p := bus.KeyPartition([]byte("cancel"), n)
	entered := make(chan struct{})
	var once sync.Once
	var sawEnd atomic.Bool
	h := func(ctx context.Context, _ *bus.Message) error {
		once.Do(func() { close(entered) })
		<-ctx.Done()
		sawEnd.Store(true)
		return ctx.Err()
	}
	busy := e.newPartReader()
	busy.run(topic, p, h)
	idle := e.read(topic, p, bus.ReadFromOldest())
	busy.waitStarted()
	idle.waitStarted()
	e.publish(onPartition(topic, "cancel", p, n, 1)...)
	e.wait("the handler call", entered)
	busy.stop()
	if !sawEnd.Load() {
		t.Errorf("ReadPartition returned before its handler saw its context end")
	}
	idle.stop()

	// An ended context: nil at once.
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if err := pr.ReadPartition(ctx, topic, p, nop); err != nil {
		t.Errorf("ReadPartition with an ended context = %v, want nil", err)
	}
}

func testReadClose(e *env) {
	t := e.t
	b := e.b
	pr := e.partitionReader()
	topic := e.topic()
	n := e.partitionCount(topic)
	p := bus.KeyPartition([]byte("close"), n)

	entered := make(chan struct{})
	var once sync.Once
	var sawEnd, returned atomic.Bool
	busy := func(ctx context.Context, _ *bus.Message) error {
		once.Do(func() { close(entered) })
		<-ctx.Done()
		sawEnd.Store(true)
		time.Sleep(10 * time.Millisecond) // widen the window for Close not waiting
		returned.Store(true)
		return ctx.Err()
	}
	first := e.newPartReader()
	first.run(topic, p, busy)
	readers := []*partReader{first}
	for i := range 6 {
		var opts []bus.ReadOption
		if i%2 == 1 {
			opts = append(opts, bus.ReadFromOldest())
		}
		readers = append(readers, e.read(topic, (p+int32(i))%n, opts...))
	}
	for _, r := range readers {
		r.waitStarted()
	}
	e.publish(onPartition(topic, "close", p, n, 3)...)
	e.wait("the busy handler call", entered)

	if err := b.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if !returned.Load() || !sawEnd.Load() {
		t.Errorf("Close returned before the reader's handler call in progress saw its context end and returned")
	}
	for i, r := range readers {
		if err := r.returned(); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("reader %d: ReadPartition ended by Close returned %v, want bus.ErrClosed", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.f.timeout())
	defer cancel()
	if err := pr.ReadPartition(ctx, topic, p, func(context.Context, *bus.Message) error { return nil }); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("ReadPartition after Close = %v, want bus.ErrClosed", err)
	}
	if _, err := pr.PartitionCount(ctx, topic); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("PartitionCount after Close = %v, want bus.ErrClosed", err)
	}
	if e.leakOpts != nil {
		goleak.VerifyNone(t, e.leakOpts...)
	}
}
