// Command production runs the registration orchestrator as a production
// service: the Kafka bus (bus/kafka), the Postgres projection store with
// its outbox (effects/postgres), the fenced Consul effect and its
// reconciler (effects/consul), the timeout sweeper, and /healthz, /readyz
// and /metrics (health, hooks/otelhooks) on one HTTP address.
//
// Every flag has an environment variable that sets it when the flag is not
// given (REGISTRAR_KAFKA_BROKERS for -kafka-brokers, REGISTRAR_PG_DSN for
// -pg-dsn, CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN for -consul-addr and
// -consul-token, ...); a configuration it refuses exits with status 2 and
// names the flag. Secrets (the DSN's password, the Consul token, the SASL
// password) appear in no log line and no error.
//
//	REGISTRAR_PG_DSN=postgres://registrar:secret@db:5432/registry \
//	go run ./examples/production -kafka-brokers kafka-1:9092,kafka-2:9092 \
//	    -consul-addr consul.service:8500 -group registrar-prod
//
// On SIGTERM or SIGINT it shuts down in order, within -shutdown-timeout:
// /readyz goes false, the sweeper stops, the consumer stops, the outbox is
// flushed, the Kafka bus, the HTTP server, the metrics, the Consul client
// and the Postgres pool close. docs/production.md is the guide: the flags,
// the shutdown order and why, sizing, the consumer group, and what each
// failure looks like to an operator.
package main
