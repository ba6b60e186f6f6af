package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

// KafkaLog is the [Log] of a Kafka cluster, read with a sarama client of
// its own: partitions from the oldest offset to the high-water mark,
// committed offsets through the admin API. It never creates a topic.
type KafkaLog struct {
	client   sarama.Client
	admin    sarama.ClusterAdmin
	consumer sarama.Consumer
}

// NewKafkaLog connects to brokers. Close it when done.
func NewKafkaLog(brokers []string) (*KafkaLog, error) {
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.ClientID = "chaos-log"
	sc.Metadata.AllowAutoTopicCreation = false
	sc.Metadata.Retry.Backoff = 50 * time.Millisecond
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	sc.Consumer.Return.Errors = true
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("chaos: kafka log: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("chaos: kafka log: %w", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("chaos: kafka log: %w", err)
	}
	return &KafkaLog{client: client, admin: admin, consumer: consumer}, nil
}

// Close closes the log's connections.
func (l *KafkaLog) Close() error {
	return errors.Join(l.consumer.Close(), l.client.Close())
}

// partitions returns the partitions of each of topics that exists, after
// one metadata refresh of every topic.
func (l *KafkaLog) partitions(topics []string) (map[string][]int32, error) {
	if err := l.client.RefreshMetadata(); err != nil {
		return nil, fmt.Errorf("chaos: kafka log: metadata: %w", err)
	}
	out := map[string][]int32{}
	for _, t := range topics {
		ps, err := l.client.Partitions(t)
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("chaos: kafka log: partitions of %s: %w", t, err)
		}
		ps = slices.Clone(ps)
		slices.Sort(ps)
		out[t] = ps
	}
	return out, nil
}

// offsets returns the offset at (sarama.OffsetOldest or OffsetNewest) of
// each partition of topic, one request per leader.
func (l *KafkaLog) offsets(topic string, parts []int32, at int64) (map[int32]int64, error) {
	reqs := map[*sarama.Broker]*sarama.OffsetRequest{}
	for _, p := range parts {
		leader, err := l.client.Leader(topic, p)
		if err != nil {
			return nil, fmt.Errorf("chaos: kafka log: leader of %s/%d: %w", topic, p, err)
		}
		if reqs[leader] == nil {
			reqs[leader] = &sarama.OffsetRequest{Version: 1}
		}
		reqs[leader].AddBlock(topic, p, at, 1)
	}
	out := make(map[int32]int64, len(parts))
	for broker, req := range reqs {
		resp, err := broker.GetAvailableOffsets(req)
		if err != nil {
			return nil, fmt.Errorf("chaos: kafka log: offsets of %s: %w", topic, err)
		}
		for p := range resp.Blocks[topic] {
			b := resp.GetBlock(topic, p)
			if b.Err != sarama.ErrNoError {
				return nil, fmt.Errorf("chaos: kafka log: offset of %s/%d: %w", topic, p, b.Err)
			}
			out[p] = b.Offset
		}
	}
	return out, nil
}

// Read implements [Log].
func (l *KafkaLog) Read(ctx context.Context, topic string) ([][]*bus.Message, error) {
	all, err := l.partitions([]string{topic})
	parts := all[topic]
	if err != nil || len(parts) == 0 {
		return nil, err
	}
	oldest, err := l.offsets(topic, parts, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	newest, err := l.offsets(topic, parts, sarama.OffsetNewest)
	if err != nil {
		return nil, err
	}
	out := make([][]*bus.Message, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Go(func() { out[i], errs[i] = l.readPartition(ctx, topic, p, oldest[p], newest[p]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (l *KafkaLog) readPartition(ctx context.Context, topic string, p int32, from, to int64) ([]*bus.Message, error) {
	if from >= to {
		return nil, nil
	}
	pc, err := l.consumer.ConsumePartition(topic, p, from)
	if err != nil {
		return nil, fmt.Errorf("chaos: kafka log: consume %s/%d: %w", topic, p, err)
	}
	defer pc.AsyncClose()
	var msgs []*bus.Message
	for {
		select {
		case m := <-pc.Messages():
			msgs = append(msgs, fromSarama(m))
			if m.Offset >= to-1 {
				return msgs, nil
			}
		case err := <-pc.Errors():
			return nil, fmt.Errorf("chaos: kafka log: read %s/%d: %w", topic, p, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("chaos: kafka log: read %s/%d up to offset %d: %w", topic, p, to, ctx.Err())
		}
	}
}

func fromSarama(m *sarama.ConsumerMessage) *bus.Message {
	msg := &bus.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Timestamp: m.Timestamp}
	if len(m.Headers) > 0 {
		msg.Headers = make(bus.Headers, len(m.Headers))
		for _, h := range m.Headers {
			if h != nil {
				msg.Headers[string(h.Key)] = string(h.Value)
			}
		}
	}
	return msg
}

// Progress implements [Log].
func (l *KafkaLog) Progress(_ context.Context, group string, topics []string) ([]PartitionProgress, error) {
	all, err := l.partitions(topics)
	if err != nil {
		return nil, err
	}
	var out []PartitionProgress
	for _, t := range topics {
		parts := all[t]
		if len(parts) == 0 {
			continue
		}
		ends, err := l.offsets(t, parts, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		var committed *sarama.OffsetFetchResponse
		if group != "" {
			committed, err = l.admin.ListConsumerGroupOffsets(group, map[string][]int32{t: parts})
			if err != nil {
				return nil, fmt.Errorf("chaos: kafka log: offsets of group %s: %w", group, err)
			}
		}
		for _, p := range parts {
			c := int64(-1)
			if committed != nil {
				if b := committed.GetBlock(t, p); b != nil && b.Err == sarama.ErrNoError {
					c = b.Offset
				}
			}
			out = append(out, PartitionProgress{Topic: t, Partition: p, Committed: c, End: ends[p]})
		}
	}
	return out, nil
}
