package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
)

// kafkaParams shape the Kafka publish benchmark: msgs messages of payload
// bytes over keys keys per round and contender. The one-message-per-call
// publishers (registrar's and watermill-kafka's) run publishers goroutines;
// registrar's batched variant runs callers goroutines that publish calls of
// callSize messages; the light-load latency rows publish lightMsgs messages
// from lightPublishers goroutines.
type kafkaParams struct {
	msgs, publishers, callSize, callers, payload, keys int
	lightMsgs, lightPublishers                         int
}

// kafkaPartitions is the partition count of every benchmark topic.
const kafkaPartitions = 12

// kafkaTimeout bounds one round.
const kafkaTimeout = 2 * time.Minute

// kfakeCluster is an in-process Kafka cluster that counts produce requests.
type kfakeCluster struct {
	*kfake.Cluster
	produces atomic.Int64
}

// startKfake starts a three-broker cluster with topics seeded, like
// kafkatest.Start but without a testing.TB.
func startKfake(topics ...string) (*kfakeCluster, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(kafkatest.DefaultBrokers),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(kafkaPartitions),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(kafkaPartitions, topics...))
	}
	fake, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	c := &kfakeCluster{Cluster: fake}
	fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		fake.KeepControl()
		c.produces.Add(1)
		return nil, nil, false
	})
	return c, nil
}

// producerConfig is the sarama configuration every contender produces with:
// the one bus/kafka builds (Kafka 2.8 protocol, idempotent, acks from all
// in-sync replicas, one request in flight per broker, murmur2 partitioning,
// no linger) with kafkatest.Tune's timings. Same guarantees, same wire
// behaviour: the contenders differ only in how they feed the producer.
func producerConfig(clientID string) *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = clientID
	sc.Version = sarama.V2_8_0_0
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = 10
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	kafkatest.Tune(sc)
	return sc
}

// kafkaWorkload is the keys and value every contender publishes.
type kafkaWorkload struct {
	p       kafkaParams
	keys    [][]byte
	keyStrs []string
	ids     []string // watermill message UUIDs, made before the clock starts
	value   []byte
	headers bus.Headers
	rawHdrs []sarama.RecordHeader
}

func newKafkaWorkload(p kafkaParams) *kafkaWorkload {
	w := &kafkaWorkload{p: p, value: make([]byte, p.payload),
		headers: bus.Headers{bus.HeaderContentType: bus.ContentTypeJSON, bus.HeaderEventType: "bench"},
		rawHdrs: []sarama.RecordHeader{
			{Key: []byte(bus.HeaderContentType), Value: []byte(bus.ContentTypeJSON)},
			{Key: []byte(bus.HeaderEventType), Value: []byte("bench")},
		}}
	for i := range p.keys {
		k := "entity-" + strconv.Itoa(i)
		w.keys = append(w.keys, []byte(k))
		w.keyStrs = append(w.keyStrs, k)
	}
	w.ids = make([]string, p.msgs)
	for i := range w.ids {
		w.ids[i] = watermill.NewUUID()
	}
	return w
}

// kafkaSample is what one round of one contender measured besides its rate.
type kafkaSample struct {
	perReq   float64 // messages per produce request
	cpuUS    float64 // process CPU (clients and brokers) per message, µs
	p50, p99 time.Duration
}

// kafkaLinger is one registrar bus of the benchmark: its Config.Linger,
// how the table names it, and whether the full one-message-per-call load
// runs on it (every bus runs the light load, for its latency).
type kafkaLinger struct {
	linger time.Duration
	label  string
	full   bool
}

// kafkaLingers are the registrar buses: the default (no linger; the target
// row), 1 ms, and the Java client's default of 5 ms.
var kafkaLingers = []kafkaLinger{
	{0, "no linger (default)", true},
	{time.Millisecond, "linger 1ms", false},
	{5 * time.Millisecond, "linger 5ms", true},
}

// name is the contender name of the bus under the full load; the light
// load's is name + "-light".
func (l kafkaLinger) name() string {
	if l.linger == 0 {
		return "registrar"
	}
	return "registrar-linger" + l.linger.String()
}

// kafkaLatencies collects the publish latency of every message of a round.
type kafkaLatencies []time.Duration

// quantiles returns the p50 and p99 of the latencies, sorting them.
func (l kafkaLatencies) quantiles() (p50, p99 time.Duration) {
	if len(l) == 0 {
		return 0, 0
	}
	slices.Sort(l)
	at := func(q float64) time.Duration { return l[min(len(l)-1, int(q*float64(len(l))))] }
	return at(0.50), at(0.99)
}

func benchKafka(ctx context.Context, o options, p *progress, t *table) error {
	kp := o.kafka
	w := newKafkaWorkload(kp)

	// Contenders, by index: the full load on every bus that runs it, the
	// batched calls, raw sarama, watermill-kafka, then the light load on
	// every bus.
	type kc struct {
		name  string
		bus   int // index in kafkaLingers, for registrar's
		msgs  int
		light bool
	}
	var kcs []kc
	for i, l := range kafkaLingers {
		if l.full {
			kcs = append(kcs, kc{name: l.name(), bus: i, msgs: kp.msgs})
		}
	}
	nFull := len(kcs)
	iBatched, iRaw, iWM := nFull, nFull+1, nFull+2
	kcs = append(kcs, kc{name: "registrar-batched", msgs: kp.msgs}, kc{name: "raw-sarama", msgs: kp.msgs}, kc{name: "watermill-kafka", msgs: kp.msgs})
	for i, l := range kafkaLingers {
		kcs = append(kcs, kc{name: l.name() + "-light", bus: i, msgs: kp.lightMsgs, light: true})
	}
	topics := make([]string, len(kcs))
	for i, c := range kcs {
		topics[i] = "bench." + c.name
	}
	cluster, err := startKfake(topics...)
	if err != nil {
		return err
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()

	rbs := make([]*kafka.Bus, len(kafkaLingers))
	for i, l := range kafkaLingers {
		rb, err := kafka.New(kafka.Config{Brokers: addrs, ClientID: "bench-" + l.name(), CreateTopics: true,
			Linger: l.linger, Sarama: kafkatest.Tune})
		if err != nil {
			return err
		}
		defer func() { _ = rb.Close() }()
		rbs[i] = rb
	}
	raw, err := sarama.NewAsyncProducer(addrs, producerConfig("bench-raw"))
	if err != nil {
		return fmt.Errorf("raw sarama: %w", err)
	}
	defer func() { _ = raw.Close() }()
	wm, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{
		Brokers: addrs,
		Marshaler: wmkafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
			return m.Metadata.Get("key"), nil
		}),
		OverwriteSaramaConfig: producerConfig("bench-watermill"),
	}, watermill.NopLogger{})
	if err != nil {
		return fmt.Errorf("watermill-kafka: %w", err)
	}
	defer func() { _ = wm.Close() }()

	// Warm up: every producer connects, learns the metadata (and, for the
	// registrar buses, creates every topic) and gets its producer id before
	// the clock runs.
	for i, c := range kcs {
		if i == iRaw || i == iWM {
			continue
		}
		if err := rbs[c.bus].Publish(ctx, &bus.Message{Topic: topics[i], Key: w.keys[0], Value: w.value}); err != nil {
			return fmt.Errorf("warm up %s: %w", c.name, err)
		}
	}
	raw.Input() <- &sarama.ProducerMessage{Topic: topics[iRaw], Key: sarama.ByteEncoder(w.keys[0]), Value: sarama.ByteEncoder(w.value)}
	select {
	case <-raw.Successes():
	case err := <-raw.Errors():
		return fmt.Errorf("warm up raw sarama: %w", err)
	}
	if err := wm.Publish(topics[iWM], message.NewMessage(watermill.NewUUID(), w.value)); err != nil {
		return fmt.Errorf("warm up watermill-kafka: %w", err)
	}

	samples := make([][]kafkaSample, len(kcs))
	lat := make(kafkaLatencies, max(kp.msgs, kp.lightMsgs))
	measure := func(i int, f func(ctx context.Context, topic string, lat kafkaLatencies) (int, error)) contender {
		return contender{name: kcs[i].name, unit: "msgs/s", run: func(ctx context.Context) (float64, error) {
			ctx, cancel := context.WithTimeout(ctx, kafkaTimeout)
			defer cancel()
			clear(lat)
			reqs, cpu := cluster.produces.Load(), cpuTime()
			start := time.Now()
			nlat, err := f(ctx, topics[i], lat)
			if err != nil {
				return 0, err
			}
			elapsed := time.Since(start)
			n := float64(kcs[i].msgs)
			s := kafkaSample{cpuUS: float64(cpuTime()-cpu) / float64(time.Microsecond) / n}
			if d := cluster.produces.Load() - reqs; d > 0 {
				s.perReq = n / float64(d)
			}
			s.p50, s.p99 = lat[:nlat].quantiles()
			samples[i] = append(samples[i], s)
			return n / elapsed.Seconds(), nil
		}}
	}
	cs := make([]contender, len(kcs))
	for i, c := range kcs {
		switch i {
		case iBatched:
			cs[i] = measure(i, func(ctx context.Context, topic string, lat kafkaLatencies) (int, error) {
				return w.registrarBatched(ctx, rbs[0], topic, lat)
			})
		case iRaw:
			cs[i] = measure(i, func(ctx context.Context, topic string, lat kafkaLatencies) (int, error) {
				return kp.msgs, w.rawSarama(ctx, raw, topic, lat)
			})
		case iWM:
			cs[i] = measure(i, func(ctx context.Context, topic string, lat kafkaLatencies) (int, error) {
				return kp.msgs, w.watermill(ctx, wm, topic, lat)
			})
		default:
			publishers := kp.publishers
			if c.light {
				publishers = kp.lightPublishers
			}
			cs[i] = measure(i, func(ctx context.Context, topic string, lat kafkaLatencies) (int, error) {
				return c.msgs, w.registrar(ctx, rbs[c.bus], topic, publishers, c.msgs, lat)
			})
		}
	}
	res, err := interleave(ctx, o, p, "kafka", false, cs)
	if err != nil {
		return err
	}
	note := func(i int, shape string) string {
		var perReq, cpu []float64
		for _, s := range samples[i] {
			perReq = append(perReq, s.perReq)
			cpu = append(cpu, s.cpuUS)
		}
		return joinNotes(shape, fmt.Sprintf("%.0f msgs/produce req", median(perReq)), fmt.Sprintf("%.1f µs CPU/msg", median(cpu)))
	}
	latency := func(i int, what string) row {
		var p50, p99 []float64
		for _, s := range samples[i] {
			p50 = append(p50, float64(s.p50))
			p99 = append(p99, float64(s.p99))
		}
		return row{Figure: fmt.Sprintf("p50 %s, p99 %s", latencyText(median(p50)), latencyText(median(p99))), Note: what}
	}
	for i := range nFull {
		l := kafkaLingers[kcs[i].bus]
		vsRaw, vsWM := pairedRatio(res[i], res[iRaw]), pairedRatio(res[i], res[iWM])
		r := row{Contender: "registrar bus/kafka Publish, " + l.label, Figure: rate(median(res[i]), "msgs/s"), Spread: spread(res[i]),
			Ratio: ratioText(vsRaw, "raw-sarama"), Note: note(i, fmt.Sprintf("%d publishers, 1 msg/call", kp.publishers))}
		r2 := row{Ratio: ratioText(vsWM, "watermill-kafka")}
		if i == 0 {
			r.Bench = "kafka"
			r.Target, r.Result = "≥ 0.9x", t.check("kafka ≥ 0.9x raw sarama", vsRaw >= 0.9)
			r2.Target, r2.Result = "≥ 2x", t.check("kafka ≥ 2x watermill-kafka", vsWM >= 2)
		}
		t.add(r)
		t.add(r2)
		t.add(latency(i, "latency: Publish call to its return"))
	}
	bRaw, bWM := pairedRatio(res[iBatched], res[iRaw]), pairedRatio(res[iBatched], res[iWM])
	t.add(row{Contender: "registrar bus/kafka Publish batched, no linger", Figure: rate(median(res[iBatched]), "msgs/s"), Spread: spread(res[iBatched]),
		Ratio: ratioText(bRaw, "raw-sarama"), Note: note(iBatched, fmt.Sprintf("%d callers, %d msgs/call", kp.callers, kp.callSize))})
	t.add(row{Ratio: ratioText(bWM, "watermill-kafka")})
	t.add(latency(iBatched, "latency: Publish call (of 256 msgs) to its return"))
	t.add(row{Contender: "raw sarama AsyncProducer (baseline)", Figure: rate(median(res[iRaw]), "msgs/s"), Spread: spread(res[iRaw]),
		Note: note(iRaw, "4 feeders, no waiting, no linger")})
	t.add(latency(iRaw, "latency: Input() to the success; the whole round queues at once"))
	t.add(row{Contender: "watermill-kafka v3.0.6 Publisher", Figure: rate(median(res[iWM]), "msgs/s"), Spread: spread(res[iWM]),
		Note: note(iWM, fmt.Sprintf("%d publishers, 1 msg/call, no linger", kp.publishers))})
	t.add(latency(iWM, "latency: Publish call to its return"))
	for i := iWM + 1; i < len(kcs); i++ {
		l := kafkaLingers[kcs[i].bus]
		t.add(row{Contender: "registrar Publish, light load, " + l.label, Figure: rate(median(res[i]), "msgs/s"), Spread: spread(res[i]),
			Note: note(i, fmt.Sprintf("%d publishers, 1 msg/call", kp.lightPublishers))})
		t.add(latency(i, "latency: Publish call to its return"))
	}
	return nil
}

// latencyText formats a duration given in nanoseconds, in ms with two
// significant digits or so.
func latencyText(ns float64) string {
	switch ms := ns / 1e6; {
	case math.IsNaN(ms):
		return "n/a"
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

// registrar publishes msgs messages of the workload with Bus.Publish, one
// message per call, from publishers goroutines that each wait for their
// acknowledgement (registrar's shape for many concurrent handlers
// publishing events), and records each call's latency.
func (w *kafkaWorkload) registrar(ctx context.Context, b *kafka.Bus, topic string, publishers, msgs int, lat kafkaLatencies) error {
	return fanOut(publishers, msgs, func(from, to int) error {
		for i := from; i < to; i++ {
			m := &bus.Message{Topic: topic, Key: w.keys[i%len(w.keys)], Value: w.value, Headers: w.headers}
			t0 := time.Now()
			if err := b.Publish(ctx, m); err != nil {
				return err
			}
			lat[i] = time.Since(t0)
		}
		return nil
	})
}

// registrarBatched publishes the workload with Bus.Publish in calls of
// p.callSize messages, from p.callers goroutines. It records the latency of
// every call, and returns the number of calls.
func (w *kafkaWorkload) registrarBatched(ctx context.Context, b *kafka.Bus, topic string, lat kafkaLatencies) (int, error) {
	calls := (w.p.msgs + w.p.callSize - 1) / w.p.callSize
	return calls, fanOut(w.p.callers, calls, func(from, to int) error {
		msgs := make([]*bus.Message, 0, w.p.callSize)
		for c := from; c < to; c++ {
			msgs = msgs[:0]
			for i := c * w.p.callSize; i < min((c+1)*w.p.callSize, w.p.msgs); i++ {
				msgs = append(msgs, &bus.Message{Topic: topic, Key: w.keys[i%len(w.keys)], Value: w.value, Headers: w.headers})
			}
			t0 := time.Now()
			if err := b.Publish(ctx, msgs...); err != nil {
				return err
			}
			lat[c] = time.Since(t0)
		}
		return nil
	})
}

// rawSarama feeds the workload to a sarama AsyncProducer from four
// goroutines that never wait, while one goroutine counts the answers: the
// fastest a sarama client can be driven, without any per-message
// acknowledgement to its callers. A message's latency runs from its send
// to Input() to its success.
func (w *kafkaWorkload) rawSarama(ctx context.Context, p sarama.AsyncProducer, topic string, lat kafkaLatencies) error {
	// Each message's Metadata is its slot.
	type slot struct {
		sent time.Time
		lat  time.Duration
	}
	slots := make([]slot, w.p.msgs)
	answered := make(chan error, 1)
	go func() {
		var first error
		for range w.p.msgs {
			select {
			case pm := <-p.Successes():
				if s, ok := pm.Metadata.(*slot); ok {
					s.lat = time.Since(s.sent)
				}
			case pe := <-p.Errors():
				if first == nil {
					first = pe.Err
				}
			case <-ctx.Done():
				answered <- ctx.Err()
				return
			}
		}
		answered <- first
	}()
	err := fanOut(4, w.p.msgs, func(from, to int) error {
		for i := from; i < to; i++ {
			pm := &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(w.keys[i%len(w.keys)]),
				Value: sarama.ByteEncoder(w.value), Headers: w.rawHdrs, Metadata: &slots[i]}
			slots[i].sent = time.Now()
			select {
			case p.Input() <- pm:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	if aerr := <-answered; err == nil {
		err = aerr
	}
	for i := range slots {
		lat[i] = slots[i].lat
	}
	return err
}

// watermill publishes the workload with watermill-kafka's Publisher (a
// sarama SyncProducer underneath), one message per call, from p.publishers
// goroutines: the same shape as registrar's. The key travels as metadata
// and the marshaler makes it the Kafka key.
func (w *kafkaWorkload) watermill(ctx context.Context, pub *wmkafka.Publisher, topic string, lat kafkaLatencies) error {
	return fanOut(w.p.publishers, w.p.msgs, func(from, to int) error {
		for i := from; i < to; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			m := message.NewMessage(w.ids[i], w.value)
			m.Metadata.Set("key", w.keyStrs[i%len(w.keyStrs)])
			m.Metadata.Set(bus.HeaderContentType, bus.ContentTypeJSON)
			m.Metadata.Set(bus.HeaderEventType, "bench")
			t0 := time.Now()
			if err := pub.Publish(topic, m); err != nil {
				return err
			}
			lat[i] = time.Since(t0)
		}
		return nil
	})
}

// fanOut splits the indexes [0, total) over n goroutines running f on their
// share, waits for all, and returns the first error.
func fanOut(n, total int, f func(from, to int) error) error {
	n = max(1, min(n, total))
	var wg sync.WaitGroup
	errs := make([]error, n)
	for g := range n {
		from, to := share(total, n, g)
		wg.Go(func() { errs[g] = f(from, to) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
