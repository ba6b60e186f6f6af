package bus_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/IBM/sarama"

	"github.com/registrar-go/registrar/bus"
)

// hash31 recovers murmur2(key) & 0x7fffffff through the exported API: with
// math.MaxInt32 partitions the modulo changes nothing, except for the one
// hash value equal to MaxInt32, which no vector below has.
func hash31(key []byte) int32 { return bus.KeyPartition(key, math.MaxInt32) }

// TestKeyPartitionKafkaVectors checks the murmur2 hash against the vectors
// of the Apache Kafka Java client's own test,
// clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
// (testMurmur2), which franz-go repeats in pkg/kgo/partitioner_test.go
// (TestMurmur2KafkaVectors). The Java values are signed 32-bit hashes; the
// partitioner uses them masked with 0x7fffffff.
func TestKeyPartitionKafkaVectors(t *testing.T) {
	for _, c := range []struct {
		key  string
		hash int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	} {
		if got, want := hash31([]byte(c.key)), c.hash&0x7fffffff; got != want {
			t.Errorf("murmur2(%q) & 0x7fffffff = %d, want %d (Java hash %d)", c.key, got, want, c.hash)
		}
	}
}

// TestKeyPartitionSaramaVectors checks hashes and partitions that sarama's
// partitioner_test.go (v1.61.1, TestMurmur2 and TestMurmur2Partitioner)
// states were verified against the Java client's DefaultPartitioner.
func TestKeyPartitionSaramaVectors(t *testing.T) {
	for _, c := range []struct {
		key       string
		hash      uint32
		partition int32 // of 100
	}{
		{"foo", 597841616, 16},
		{"bar", 988958145, 45},
		{"baz", 1973573280, 80},
		{"kafka", 3496464228, 80},
		{"sarama", 770765511, 11},
		{"", 275646681, 275646681 % 100},
	} {
		if got, want := hash31([]byte(c.key)), int32(c.hash&0x7fffffff); got != want {
			t.Errorf("murmur2(%q) & 0x7fffffff = %d, want %d", c.key, got, want)
		}
		if got := bus.KeyPartition([]byte(c.key), 100); got != c.partition {
			t.Errorf("KeyPartition(%q, 100) = %d, want %d", c.key, got, c.partition)
		}
	}
}

// TestKeyPartitionMatchesSarama compares KeyPartition with sarama's
// NewMurmur2Partitioner on random keys of every length up to 64 bytes.
func TestKeyPartitionMatchesSarama(t *testing.T) {
	keys := 100_000
	if testing.Short() {
		keys = 10_000
	}
	rng := rand.NewChaCha8([32]byte{'r', 'e', 'g'})
	p := sarama.NewMurmur2Partitioner("registrar")
	counts := []int32{1, 3, 12, 100, math.MaxInt32}
	buf := make([]byte, 64)
	msg := &sarama.ProducerMessage{}
	for i := range keys {
		key := buf[:i%65]
		_, _ = rng.Read(key)
		msg.Key = sarama.ByteEncoder(key)
		for _, n := range counts {
			want, err := p.Partition(msg, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := bus.KeyPartition(key, n); got != want {
				t.Fatalf("KeyPartition(%x, %d) = %d, sarama says %d", key, n, got, want)
			}
		}
	}
}

func TestKeyPartitionRange(t *testing.T) {
	for n := int32(1); n <= 64; n++ {
		for i := range 256 {
			if p := bus.KeyPartition([]byte{byte(i), 'k'}, n); p < 0 || p >= n {
				t.Fatalf("KeyPartition(_, %d) = %d", n, p)
			}
		}
	}
	// The empty key is a key, not "no key": it has a fixed partition.
	if a, b := bus.KeyPartition([]byte{}, 12), bus.KeyPartition(nil, 12); a != b {
		t.Errorf("empty and nil key differ: %d, %d", a, b)
	}
}

func TestKeyPartitionPanicsWithoutPartitions(t *testing.T) {
	for _, n := range []int32{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("KeyPartition(_, %d) did not panic", n)
				}
			}()
			bus.KeyPartition([]byte("k"), n)
		}()
	}
}

func BenchmarkKeyPartition(b *testing.B) {
	key := []byte("9b2f0f4e-3c1a-4c55-8d7e-2a1f3b4c5d6e")
	b.SetBytes(int64(len(key)))
	for b.Loop() {
		bus.KeyPartition(key, 12)
	}
}

func TestPartitionKeys(t *testing.T) {
	for _, n := range []int32{1, 2, 3, 12, 100, 1000} {
		keys := bus.PartitionKeys(n)
		if len(keys) != int(n) {
			t.Fatalf("%d partitions: %d keys", n, len(keys))
		}
		for p, k := range keys {
			if got := bus.KeyPartition(k, n); got != int32(p) {
				t.Fatalf("%d partitions: key %q maps to %d, not %d", n, k, got, p)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("PartitionKeys(0) did not panic")
		}
	}()
	bus.PartitionKeys(0)
}
