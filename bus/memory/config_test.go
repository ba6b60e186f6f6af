package memory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/memory"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  memory.Config
		want []string // substrings of the error; none means valid
	}{
		{name: "zero value", cfg: memory.Config{}},
		{name: "explicit values", cfg: memory.Config{Partitions: 3, RetentionMessages: 10, RetentionBytes: 1 << 10}},
		{name: "one limit off", cfg: memory.Config{RetentionMessages: memory.NoLimit}},
		{name: "topic override", cfg: memory.Config{Topics: map[string]memory.TopicConfig{"t": {Partitions: 1, RetentionBytes: memory.NoLimit}}}},
		{name: "negative partitions", cfg: memory.Config{Partitions: -1}, want: []string{"Partitions -1"}},
		{name: "too many partitions", cfg: memory.Config{Partitions: memory.MaxPartitions + 1}, want: []string{"outside 0..10000"}},
		{name: "message size limit", cfg: memory.Config{MaxMessageBytes: 1 << 10}},
		{name: "negative message size limit", cfg: memory.Config{MaxMessageBytes: -1}, want: []string{"MaxMessageBytes -1"}},
		{name: "both limits off", cfg: memory.Config{RetentionMessages: memory.NoLimit, RetentionBytes: memory.NoLimit}, want: []string{"both NoLimit"}},
		{
			name: "every problem at once",
			cfg: memory.Config{
				Partitions: -2, RetentionMessages: -5, RetentionBytes: -7, MaxMessageBytes: -3,
				Topics: map[string]memory.TopicConfig{
					"":  {},
					"t": {Partitions: -3, RetentionMessages: -9, RetentionBytes: -11},
					"u": {RetentionMessages: memory.NoLimit, RetentionBytes: memory.NoLimit},
				},
			},
			want: []string{
				"Partitions -2", "RetentionMessages -5", "RetentionBytes -7", "MaxMessageBytes -3", "empty topic name",
				`topic "t": Partitions -3`, `topic "t": RetentionMessages -9`, `topic "t": RetentionBytes -11`,
				`topic "u": both retention limits are NoLimit`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				b, err := memory.New(tt.cfg)
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				_ = b.Close()
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v\nwant it to mention %q", err, w)
				}
			}
			if _, err := memory.New(tt.cfg); err == nil {
				t.Errorf("New accepted an invalid config")
			}
		})
	}
}

func TestTopicOverrides(t *testing.T) {
	b := newBus(t, memory.Config{Topics: map[string]memory.TopicConfig{"small": {Partitions: 3}}})
	if n := b.Partitions("small"); n != 3 {
		t.Errorf("Partitions(small) = %d, want 3", n)
	}
	if n := b.Partitions("other"); n != memory.DefaultPartitions {
		t.Errorf("Partitions(other) = %d, want %d", n, memory.DefaultPartitions)
	}
	for i := range 50 {
		m := &bus.Message{Topic: "small", Key: []byte{byte(i)}}
		if err := b.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if want := bus.KeyPartition(m.Key, 3); m.Partition != want {
			t.Fatalf("key %d on partition %d, want %d", i, m.Partition, want)
		}
	}
	if n := b.Partitions("small"); n != 3 {
		t.Errorf("after use, Partitions(small) = %d", n)
	}
}
