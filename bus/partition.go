package bus

import "strconv"

// KeyPartition returns the partition, out of numPartitions, that a message
// with this key lands on: (murmur2(key) & 0x7fffffff) % numPartitions, the
// rule of the Java client's default partitioner, shared by aiokafka, franz-go
// and sarama's NewMurmur2Partitioner. A key therefore lands on the same
// partition whichever of those clients published it.
//
// It panics if numPartitions is not positive, like a division by zero.
func KeyPartition(key []byte, numPartitions int32) int32 {
	if numPartitions <= 0 {
		panic("registrar/bus: KeyPartition with a partition count that is not positive")
	}
	return int32(murmur2(key)&0x7fffffff) % numPartitions
}

// murmur2 is the 32-bit MurmurHash2 variant of Kafka's Utils.murmur2: seed
// 0x9747b28c, little-endian 4-byte blocks, tail bytes mixed in reverse order.
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// PartitionKeys returns, for each of numPartitions partitions, a key that
// [KeyPartition] maps to it: "partition-<i>" with the smallest i that lands
// there. A publisher that must reach every partition of a topic (a request
// addressed to readers that each read one partition) publishes one copy
// keyed with each. It costs about numPartitions·ln(numPartitions) hashes.
//
// It panics if numPartitions is not positive, as KeyPartition does.
func PartitionKeys(numPartitions int32) [][]byte {
	if numPartitions <= 0 {
		panic("registrar/bus: PartitionKeys with a partition count that is not positive")
	}
	keys := make([][]byte, numPartitions)
	left := numPartitions
	for i := 0; left > 0; i++ {
		k := []byte("partition-" + strconv.Itoa(i))
		if p := KeyPartition(k, numPartitions); keys[p] == nil {
			keys[p] = k
			left--
		}
	}
	return keys
}
