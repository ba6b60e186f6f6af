package main

import (
	"context"
	"errors"
	"fmt"
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
// callSize messages.
type kafkaParams struct {
	msgs, publishers, callSize, callers, payload, keys int
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
	perReq float64 // messages per produce request
	cpuUS  float64 // process CPU (clients and brokers) per message, µs
}

func benchKafka(ctx context.Context, o options, p *progress, t *table) error {
	kp := o.kafka
	w := newKafkaWorkload(kp)
	names := []string{"registrar", "registrar-batched", "raw-sarama", "watermill-kafka"}
	topics := make([]string, len(names))
	for i, n := range names {
		topics[i] = "bench." + n
	}
	cluster, err := startKfake(topics...)
	if err != nil {
		return err
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()

	rb, err := kafka.New(kafka.Config{Brokers: addrs, ClientID: "bench-registrar", CreateTopics: true, Sarama: kafkatest.Tune})
	if err != nil {
		return err
	}
	defer func() { _ = rb.Close() }()
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

	// Warm up: every producer connects, learns the metadata and gets its
	// producer id before the clock runs.
	warm := &bus.Message{Topic: topics[0], Key: w.keys[0], Value: w.value}
	if err := rb.Publish(ctx, warm); err != nil {
		return fmt.Errorf("warm up registrar: %w", err)
	}
	warm.Topic = topics[1]
	if err := rb.Publish(ctx, warm); err != nil {
		return fmt.Errorf("warm up registrar: %w", err)
	}
	raw.Input() <- &sarama.ProducerMessage{Topic: topics[2], Key: sarama.ByteEncoder(w.keys[0]), Value: sarama.ByteEncoder(w.value)}
	select {
	case <-raw.Successes():
	case err := <-raw.Errors():
		return fmt.Errorf("warm up raw sarama: %w", err)
	}
	if err := wm.Publish(topics[3], message.NewMessage(watermill.NewUUID(), w.value)); err != nil {
		return fmt.Errorf("warm up watermill-kafka: %w", err)
	}

	samples := make([][]kafkaSample, len(names))
	measure := func(i int, f func(ctx context.Context, topic string) error) func(context.Context) (float64, error) {
		return func(ctx context.Context) (float64, error) {
			ctx, cancel := context.WithTimeout(ctx, kafkaTimeout)
			defer cancel()
			reqs, cpu := cluster.produces.Load(), cpuTime()
			start := time.Now()
			if err := f(ctx, topics[i]); err != nil {
				return 0, err
			}
			elapsed := time.Since(start)
			n := float64(kp.msgs)
			s := kafkaSample{cpuUS: float64(cpuTime()-cpu) / float64(time.Microsecond) / n}
			if d := cluster.produces.Load() - reqs; d > 0 {
				s.perReq = n / float64(d)
			}
			samples[i] = append(samples[i], s)
			return n / elapsed.Seconds(), nil
		}
	}
	cs := []contender{
		{name: names[0], unit: "msgs/s", run: measure(0, func(ctx context.Context, topic string) error { return w.registrar(ctx, rb, topic) })},
		{name: names[1], unit: "msgs/s", run: measure(1, func(ctx context.Context, topic string) error { return w.registrarBatched(ctx, rb, topic) })},
		{name: names[2], unit: "msgs/s", run: measure(2, func(ctx context.Context, topic string) error { return w.rawSarama(ctx, raw, topic) })},
		{name: names[3], unit: "msgs/s", run: measure(3, func(ctx context.Context, topic string) error { return w.watermill(ctx, wm, topic) })},
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
	vsRaw, vsWM := pairedRatio(res[0], res[2]), pairedRatio(res[0], res[3])
	t.add(row{Bench: "kafka", Contender: "registrar bus/kafka Publish", Figure: rate(median(res[0]), "msgs/s"), Spread: spread(res[0]),
		Ratio: ratioText(vsRaw, "raw-sarama"), Target: "≥ 0.9x", Result: t.check("kafka ≥ 0.9x raw sarama", vsRaw >= 0.9),
		Note: note(0, fmt.Sprintf("%d publishers, 1 msg/call", kp.publishers))})
	t.add(row{Ratio: ratioText(vsWM, "watermill-kafka"), Target: "≥ 3x", Result: t.check("kafka ≥ 3x watermill-kafka", vsWM >= 3)})
	bRaw, bWM := pairedRatio(res[1], res[2]), pairedRatio(res[1], res[3])
	t.add(row{Contender: "registrar bus/kafka Publish batched", Figure: rate(median(res[1]), "msgs/s"), Spread: spread(res[1]),
		Ratio: ratioText(bRaw, "raw-sarama"), Note: note(1, fmt.Sprintf("%d callers, %d msgs/call", kp.callers, kp.callSize))})
	t.add(row{Ratio: ratioText(bWM, "watermill-kafka")})
	t.add(row{Contender: "raw sarama AsyncProducer (baseline)", Figure: rate(median(res[2]), "msgs/s"), Spread: spread(res[2]),
		Note: note(2, "4 feeders, no waiting")})
	t.add(row{Contender: "watermill-kafka v3.0.6 Publisher", Figure: rate(median(res[3]), "msgs/s"), Spread: spread(res[3]),
		Note: note(3, fmt.Sprintf("%d publishers, 1 msg/call", kp.publishers))})
	return nil
}

// registrar publishes the workload with Bus.Publish, one message per call,
// from p.publishers goroutines that each wait for their acknowledgement:
// registrar's shape for many concurrent handlers publishing events.
func (w *kafkaWorkload) registrar(ctx context.Context, b *kafka.Bus, topic string) error {
	return fanOut(w.p.publishers, w.p.msgs, func(from, to int) error {
		for i := from; i < to; i++ {
			m := &bus.Message{Topic: topic, Key: w.keys[i%len(w.keys)], Value: w.value, Headers: w.headers}
			if err := b.Publish(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// registrarBatched publishes the workload with Bus.Publish in calls of
// p.callSize messages, from p.callers goroutines.
func (w *kafkaWorkload) registrarBatched(ctx context.Context, b *kafka.Bus, topic string) error {
	calls := (w.p.msgs + w.p.callSize - 1) / w.p.callSize
	return fanOut(w.p.callers, calls, func(from, to int) error {
		msgs := make([]*bus.Message, 0, w.p.callSize)
		for c := from; c < to; c++ {
			msgs = msgs[:0]
			for i := c * w.p.callSize; i < min((c+1)*w.p.callSize, w.p.msgs); i++ {
				msgs = append(msgs, &bus.Message{Topic: topic, Key: w.keys[i%len(w.keys)], Value: w.value, Headers: w.headers})
			}
			if err := b.Publish(ctx, msgs...); err != nil {
				return err
			}
		}
		return nil
	})
}

// rawSarama feeds the workload to a sarama AsyncProducer from four
// goroutines that never wait, while one goroutine counts the answers: the
// fastest a sarama client can be driven, without any per-message
// acknowledgement to its callers.
func (w *kafkaWorkload) rawSarama(ctx context.Context, p sarama.AsyncProducer, topic string) error {
	answered := make(chan error, 1)
	go func() {
		var first error
		for range w.p.msgs {
			select {
			case <-p.Successes():
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
				Value: sarama.ByteEncoder(w.value), Headers: w.rawHdrs}
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
	return err
}

// watermill publishes the workload with watermill-kafka's Publisher (a
// sarama SyncProducer underneath), one message per call, from p.publishers
// goroutines: the same shape as registrar's. The key travels as metadata
// and the marshaler makes it the Kafka key.
func (w *kafkaWorkload) watermill(ctx context.Context, pub *wmkafka.Publisher, topic string) error {
	return fanOut(w.p.publishers, w.p.msgs, func(from, to int) error {
		for i := from; i < to; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			m := message.NewMessage(w.ids[i], w.value)
			m.Metadata.Set("key", w.keyStrs[i%len(w.keyStrs)])
			m.Metadata.Set(bus.HeaderContentType, bus.ContentTypeJSON)
			m.Metadata.Set(bus.HeaderEventType, "bench")
			if err := pub.Publish(topic, m); err != nil {
				return err
			}
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
