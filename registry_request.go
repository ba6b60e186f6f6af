package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

// RequestOption configures one call of [RequestIntrospection].
type RequestOption func(*requestConfig)

type requestConfig struct {
	topic, source string
	now           func() time.Time
}

// WithRequestTopic publishes the request on topic instead of
// registration.TopicRegistryRequest; an empty topic keeps the default.
func WithRequestTopic(topic string) RequestOption {
	return func(c *requestConfig) {
		if topic != "" {
			c.topic = topic
		}
	}
}

// WithRequestSource names the sender: the envelope's source_tool, and the
// request's registry_id when req.RegistryID is empty.
func WithRequestSource(name string) RequestOption {
	return func(c *requestConfig) { c.source = name }
}

// WithRequestClock sets the clock that stamps the envelope, and the
// request when req.Timestamp is zero; default time.Now.
func WithRequestClock(now func() time.Time) RequestOption {
	return func(c *requestConfig) {
		if now != nil {
			c.now = now
		}
	}
}

// RequestIntrospection publishes a registry request on
// registration.TopicRegistryRequest ([WithRequestTopic] for another),
// asking the nodes it targets ([registration.RegistryRequest.Targets]) to
// introspect again — for example after the store was lost or restored. On
// a bus that reads partitions (bus.PartitionReader: the memory and Kafka
// buses) it publishes one copy of the request to each partition of the
// topic, keyed with bus.PartitionKeys, since package node reads only the
// partition its node id maps to; the copies share one envelope id, and a
// node that sees several answers once. On another bus it publishes one
// message with no key. A request published by another sender as a single
// message reaches the nodes of the partition it lands on; give the topic
// one partition when such a sender must reach every node. The envelope has event_type registration.EventRegistryRequest, a
// new envelope id, the clock's time, and req's correlation id; a zero
// correlation id is replaced by a new one, in the payload too, so the
// introspections the request causes can be tied to it. A zero
// req.Timestamp is the clock's time.
func RequestIntrospection(ctx context.Context, b bus.EventBus, req registration.RegistryRequest, opts ...RequestOption) error {
	if b == nil {
		return errors.New("registrar: request introspection: nil bus")
	}
	cfg := requestConfig{topic: registration.TopicRegistryRequest, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	now := cfg.now().UTC()
	if req.Timestamp.IsZero() {
		req.Timestamp = now
	}
	if req.CorrelationID == uuid.Nil {
		req.CorrelationID = uuid.New()
	}
	if req.RegistryID == "" && cfg.source != "" {
		req.RegistryID = cfg.source
	}
	payload, err := json.Marshal(&req)
	if err != nil {
		return fmt.Errorf("registrar: request introspection: %w", err)
	}
	env := &bus.Envelope{
		EnvelopeID: uuid.New(), EnvelopeTimestamp: now, CorrelationID: req.CorrelationID,
		EventType: registration.EventRegistryRequest, SourceTool: cfg.source,
		Priority: bus.DefaultPriority, OnexVersion: bus.DefaultVersion, EnvelopeVersion: bus.DefaultEnvelopeVersion,
		Payload: payload,
	}
	pr, ok := b.(bus.PartitionReader)
	if !ok {
		if err := b.PublishEnvelope(ctx, cfg.topic, env); err != nil {
			return fmt.Errorf("registrar: request introspection: publish to %s: %w", cfg.topic, err)
		}
		return nil
	}
	// One copy per partition: package node reads only its key's partition
	// of the topic, as of the event topics.
	n, err := pr.PartitionCount(ctx, cfg.topic)
	if err != nil {
		return fmt.Errorf("registrar: request introspection: partitions of %s: %w", cfg.topic, err)
	}
	msgs := make([]*bus.Message, 0, n)
	for _, key := range bus.PartitionKeys(n) {
		m, err := bus.EnvelopeMessage(cfg.topic, env, bus.WithKey(key))
		if err != nil {
			return fmt.Errorf("registrar: request introspection: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		return fmt.Errorf("registrar: request introspection: publish to %s: %w", cfg.topic, err)
	}
	return nil
}
