// Package kafkatest starts an in-process Kafka cluster for tests and tunes
// [kafka.Bus] to it.
//
// The cluster is github.com/twmb/franz-go/pkg/kfake: the real Kafka wire
// protocol served from the test process, spoken by the real sarama client
// inside [kafka.Bus], so tests of code that runs on Kafka need no broker
// installed. [Start] returns a [Cluster] that closes itself when the test
// ends; [Cluster.Config] is a [kafka.Config] for it with timings short
// enough for tests (group heartbeats, metadata refreshes, retry backoffs);
// [Cluster.NewBus] builds a bus from it and closes it with the test.
// [Cluster.Fake] exposes kfake's control hooks (Control, ControlKey,
// Fault, ...) for fault injection.
//
//	c := kafkatest.Start(t)
//	b := c.NewBus(t)
//	err := b.Publish(ctx, &bus.Message{Topic: "orders", Key: key, Value: value})
//
// Options of [Start] are kfake's: kfake.BrokerConfigs(map[string]string{
// "message.max.bytes": "16384"}) gives the brokers a small size limit, to be
// told to the bus with kafka.Config.BrokerMaxMessageBytes.
//
// [Tune] applies the same test timings to any *sarama.Config.
package kafkatest
