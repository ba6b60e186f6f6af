// Command bench measures registrar side by side with its peers and prints one
// table of figures, ratios and targets.
//
// Every benchmark runs its contenders in this one process, interleaved: one
// round runs each contender once (in an order rotated from round to round),
// and the figures reported are medians over the rounds. Ratios are medians of
// the per-round ratios, so each one compares two measurements taken under the
// same load: on a shared, noisy machine the absolute figures move from run to
// run, the ratios much less.
//
// The benchmarks:
//
//	memory    keyed publish → consume on registrar's bus/memory against
//	          watermill's GoChannel
//	kafka     bus/kafka Publish against raw sarama's AsyncProducer and
//	          watermill-kafka's Publisher, all to one in-process kfake cluster
//	postgres  the heartbeat update: one UPDATE per intent, the registrar
//	          batch path (Update.ExecuteBatch), a hand-written
//	          UPDATE ... FROM unnest(...)
//	runtime   the registration Runtime end to end: heartbeats through the
//	          memory bus, and through kfake, into the Postgres store
//	decide    the registration reducer's Decide for a heartbeat: ns/op and
//	          allocs/op
//
// Usage, from this directory:
//
//	go run . [-quick] [-only memory,kafka,postgres,runtime,decide] [-rounds N]
//	go run . -scale [-scale-sizes 10000,100000,1000000]
//
// -scale runs the scale curve instead: at each fleet size the Runtime's
// rate (memory bus into the memory store and into Postgres), the memory
// store's live heap and the Postgres table's size per node, and the time
// and plans of one overdue sweep, with how each grows.
//
// The table goes to stdout, progress lines to stderr. The postgres and
// runtime benchmarks need PostgreSQL: the DSN comes from -pg, else
// REGISTRAR_TEST_PG, else postgres://postgres@127.0.0.1:5432/test. They work
// in a schema of their own that they drop when done. See README.md for how
// to read the table.
package main
