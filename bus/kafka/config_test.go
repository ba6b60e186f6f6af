package kafka

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

func TestValidate(t *testing.T) {
	const secret = "hunter2-secret"
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected problem
	}{
		{"valid", Config{Brokers: []string{"127.0.0.1:9092"}}, nil},
		{"valid with everything", Config{
			Brokers: []string{"a:1", "[::1]:9093"}, ClientID: "x", Version: "3.7.0",
			SASL:         SASL{Mechanism: SASLScramSHA512, User: "u", Password: secret},
			CreateTopics: true, Partitions: 3, ReplicationFactor: 1,
		}, nil},
		{"no brokers", Config{}, []string{"no brokers"}},
		{"every problem at once", Config{
			Brokers:           []string{"nohost", "h:0", ":9092"},
			Version:           "banana",
			SASL:              SASL{Mechanism: "GSSAPI", User: "u", Password: secret},
			Partitions:        -1,
			ReplicationFactor: -2,
		}, []string{`broker 0 ("nohost")`, `broker 1 ("h:0") has an invalid port`, `broker 2 (":9092")`,
			`version "banana"`, `SASL mechanism "GSSAPI"`, "negative partition count", "negative replication factor"}},
		{"negative broker limit", Config{Brokers: []string{"h:1"}, BrokerMaxMessageBytes: -1}, []string{"BrokerMaxMessageBytes -1"}},
		{"broker limit without room for a record", Config{Brokers: []string{"h:1"}, BrokerMaxMessageBytes: RecordBatchOverhead + bus.MessageOverhead},
			[]string{"BrokerMaxMessageBytes 97 leaves no room"}},
		{"negative linger", Config{Brokers: []string{"h:1"}, Linger: -time.Millisecond}, []string{"Linger -1ms is not between 0 and MaxLinger"}},
		{"linger over the maximum", Config{Brokers: []string{"h:1"}, Linger: MaxLinger + time.Millisecond}, []string{"Linger 1.001s is not between"}},
		{"maximum linger", Config{Brokers: []string{"h:1"}, Linger: MaxLinger}, nil},
		{"old version", Config{Brokers: []string{"h:1"}, Version: "0.10.2.0"}, []string{"older than"}},
		{"sasl without credentials", Config{Brokers: []string{"h:1"}, SASL: SASL{Mechanism: SASLPlain}},
			[]string{"without a user", "without a password"}},
		{"credentials without mechanism", Config{Brokers: []string{"h:1"}, SASL: SASL{User: "u", Password: secret}},
			[]string{"without a SASL mechanism"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %d problems", len(tt.want))
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Validate() = %q, missing %q", msg, w)
				}
			}
			if n := strings.Count(msg, "\n") + 1; n != len(tt.want) {
				t.Errorf("Validate() reported %d problems, want %d:\n%s", n, len(tt.want), msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("Validate() leaks the password: %q", msg)
			}
		})
	}
}

func TestSASLNeverPrintsPassword(t *testing.T) {
	const secret = "hunter2-secret"
	cfg := Config{Brokers: []string{"h:1"}, SASL: SASL{Mechanism: SASLPlain, User: "alice", Password: secret}}
	for _, s := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg),
		fmt.Sprint(cfg.SASL), fmt.Sprintf("%#v", cfg.SASL),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("formatted config contains the password: %s", s)
		}
		if !strings.Contains(s, "alice") {
			t.Errorf("formatted config lost the user: %s", s)
		}
	}
}

func TestSaramaConfig(t *testing.T) {
	cfg := Config{Brokers: []string{"h:1"}, SASL: SASL{Mechanism: SASLScramSHA256, User: "u", Password: "p"}}.withDefaults()
	sc, err := cfg.saramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !sc.Producer.Idempotent, sc.Producer.RequiredAcks != sarama.WaitForAll, sc.Net.MaxOpenRequests != 1:
		t.Errorf("producer is not idempotent with acks=all and one request in flight")
	case sc.Producer.Retry.Max < 1 || sc.Producer.Retry.BackoffFunc == nil:
		t.Errorf("producer does not retry with backoff")
	case sc.Consumer.Offsets.AutoCommit.Enable:
		t.Errorf("offsets are auto-committed")
	case sc.Consumer.Offsets.Initial != sarama.OffsetOldest:
		t.Errorf("a new group does not start at the oldest message")
	case sc.Metadata.AllowAutoTopicCreation:
		t.Errorf("metadata requests may create topics")
	case sc.Version != sarama.V2_8_0_0:
		t.Errorf("Version = %v, want %s", sc.Version, DefaultVersion)
	case !sc.Net.SASL.Enable || sc.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA256 || sc.Net.SASL.SCRAMClientGeneratorFunc == nil:
		t.Errorf("SASL SCRAM-SHA-256 not configured")
	}
	p, _ := sc.Producer.Partitioner("t").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder("entity-1")}, 12)
	if want := bus.KeyPartition([]byte("entity-1"), 12); p != want {
		t.Errorf("partitioner put entity-1 on %d, bus.KeyPartition says %d", p, want)
	}

	// The escape hatch may change anything, but not what the bus's
	// guarantees rest on.
	cfg.Sarama = func(sc *sarama.Config) {
		sc.Producer.Compression = sarama.CompressionZSTD
		sc.Producer.Return.Successes = false
		sc.Consumer.Offsets.AutoCommit.Enable = true
		sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	}
	sc, err = cfg.saramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Producer.Compression != sarama.CompressionZSTD {
		t.Errorf("the escape hatch's compression was not kept")
	}
	if !sc.Producer.Return.Successes || sc.Consumer.Offsets.AutoCommit.Enable {
		t.Errorf("the escape hatch turned off acknowledgements or turned on auto-commit")
	}
	for _, s := range sc.Consumer.Group.Rebalance.GroupStrategies {
		if cooperative(s) {
			t.Errorf("strategy %s is cooperative; the bus needs the eager protocol", s.Name())
		}
	}

	cfg.Sarama = func(sc *sarama.Config) { sc.Net.DialTimeout = -1 }
	if _, err := cfg.saramaConfig(); err == nil {
		t.Errorf("an invalid sarama config from the escape hatch was accepted")
	}
}

// TestLingerConfig checks that Linger reaches sarama's flush settings, and
// that the default leaves them off (a batch goes out at once).
func TestLingerConfig(t *testing.T) {
	for _, tt := range []struct {
		linger    time.Duration
		wantFreq  time.Duration
		wantBytes int
	}{
		{0, 0, 0},
		{time.Microsecond, time.Microsecond, LingerBytes},
		{5 * time.Millisecond, 5 * time.Millisecond, LingerBytes},
	} {
		cfg := Config{Brokers: []string{"h:1"}, Linger: tt.linger}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Linger %v: %v", tt.linger, err)
		}
		sc, err := cfg.withDefaults().saramaConfig()
		if err != nil {
			t.Fatalf("Linger %v: %v", tt.linger, err)
		}
		f := sc.Producer.Flush
		if f.Frequency != tt.wantFreq || f.Bytes != tt.wantBytes || f.Messages != 0 {
			t.Errorf("Linger %v: Flush.Frequency %v, Bytes %d, Messages %d; want %v, %d, 0",
				tt.linger, f.Frequency, f.Bytes, f.Messages, tt.wantFreq, tt.wantBytes)
		}
	}

	// The escape hatch has the last word on the flush settings.
	cfg := Config{Brokers: []string{"h:1"}, Linger: 5 * time.Millisecond, Sarama: func(sc *sarama.Config) { sc.Producer.Flush.Frequency = time.Millisecond }}
	sc, err := cfg.withDefaults().saramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Producer.Flush.Frequency != time.Millisecond {
		t.Errorf("Flush.Frequency = %v, want the escape hatch's 1ms", sc.Producer.Flush.Frequency)
	}
}

// TestSCRAMVector runs the SCRAM-SHA-256 example exchange of RFC 7677,
// section 3.
func TestSCRAMVector(t *testing.T) {
	s := newSCRAM(sha256.New)
	if err := s.Begin("user", "pencil", ""); err != nil {
		t.Fatal(err)
	}
	s.nonce = "rOprNGfwEbeRWgbNEkqO"
	first, err := s.Step("")
	if err != nil || first != "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" {
		t.Fatalf("client-first = %q, %v", first, err)
	}
	final, err := s.Step("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	if err != nil || final != want {
		t.Fatalf("client-final = %q, %v; want %q", final, err, want)
	}
	if s.Done() {
		t.Fatalf("done before the server-final message")
	}
	if _, err := s.Step("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err != nil || !s.Done() {
		t.Fatalf("server-final: %v, done %v", err, s.Done())
	}

	// A server that does not know the password is caught.
	_ = s.Begin("user", "pencil", "")
	s.nonce = "rOprNGfwEbeRWgbNEkqO"
	_, _ = s.Step("")
	_, _ = s.Step("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	_, err = s.Step("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
	if err == nil {
		t.Errorf("a wrong server signature was accepted")
	} else if strings.Contains(err.Error(), "pencil") {
		t.Errorf("error leaks the password: %v", err)
	}

	// A nonce the server did not extend is rejected.
	_ = s.Begin("user", "pencil", "")
	_, _ = s.Step("")
	if _, err := s.Step("r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"); err == nil {
		t.Errorf("a foreign nonce was accepted")
	}

	// A server error is reported.
	_ = s.Begin("user", "pencil", "")
	_, _ = s.Step("")
	if _, err := s.Step("e=unknown-user"); err == nil || !strings.Contains(err.Error(), "unknown-user") {
		t.Errorf("server error reported as %v", err)
	}
}
