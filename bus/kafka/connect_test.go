package kafka_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/intent"
)

// closedPort returns host:port where nothing listens: a port the kernel just
// handed out and that was closed again.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestNewUnreachableIsRetryable: New against brokers that refuse the
// connection fails quickly with an error marked intent.Retryable, as
// postgres.NewPool's is, that names the brokers and not the SASL password.
func TestNewUnreachableIsRetryable(t *testing.T) {
	const password = "unreachable-s3cret"
	brokers := []string{closedPort(t), closedPort(t)}
	cfg := kafka.Config{
		Brokers: brokers,
		SASL:    kafka.SASL{Mechanism: kafka.SASLScramSHA512, User: "registrar", Password: password},
		Sarama: func(sc *sarama.Config) {
			sc.Net.DialTimeout = 500 * time.Millisecond
			sc.Metadata.Retry.Max = 1
			sc.Metadata.Retry.Backoff = 10 * time.Millisecond
		},
	}
	start := time.Now()
	b, err := kafka.New(cfg)
	if err == nil {
		_ = b.Close()
		t.Fatal("New connected to a closed port")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("New took %v to give up", d)
	}
	if !intent.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = false, want true", err)
	}
	if intent.IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = true", err)
	}
	if !errors.Is(err, sarama.ErrOutOfBrokers) {
		t.Errorf("error %v does not wrap sarama.ErrOutOfBrokers", err)
	}
	msg := err.Error()
	t.Logf("New: %s", msg)
	for _, br := range brokers {
		if !strings.Contains(msg, br) {
			t.Errorf("error %q does not name broker %s", msg, br)
		}
	}
	if strings.Contains(msg, password) {
		t.Errorf("error leaks the SASL password: %q", msg)
	}
}

// TestNewBadConfigIsNotRetryable: a config that New rejects before any
// connection is not retryable: trying again cannot help.
func TestNewBadConfigIsNotRetryable(t *testing.T) {
	for name, cfg := range map[string]kafka.Config{
		"no brokers":    {},
		"bad broker":    {Brokers: []string{"no-port"}},
		"bad version":   {Brokers: []string{"127.0.0.1:9092"}, Version: "0.10.0"},
		"bad sarama":    {Brokers: []string{"127.0.0.1:9092"}, Sarama: func(sc *sarama.Config) { sc.Net.DialTimeout = -1 }},
		"SASL, no user": {Brokers: []string{"127.0.0.1:9092"}, SASL: kafka.SASL{Mechanism: kafka.SASLPlain, Password: "p"}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := kafka.New(cfg)
			if err == nil {
				_ = b.Close()
				t.Fatal("New accepted an invalid config")
			}
			if intent.IsRetryable(err) {
				t.Errorf("IsRetryable(%v) = true for an invalid config", err)
			}
		})
	}
}
