package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/effects/postgres"
)

// config is what the flags and their environment variables say.
type config struct {
	kafkaBrokers      []string
	kafkaClientID     string
	kafkaVersion      string
	kafkaCreateTopics bool
	partitions        int
	replication       int
	kafkaTLS          bool
	saslMechanism     string
	saslUser          string
	saslPassword      string

	pgDSN      string
	pgSchema   string
	pgMaxConns int

	consulAddr  string
	consulToken string

	contractPath string
	group        string
	batchSize    int
	batchWait    time.Duration
	stateCache   int
	kafkaLinger  time.Duration

	httpAddr        string
	drainDelay      time.Duration
	shutdownTimeout time.Duration

	logLevel  slog.Level
	logFormat string
}

// configError is a configuration the command refuses: it exits with
// status 2, as for a flag that does not parse.
type configError struct{ err error }

func (e *configError) Error() string { return "configuration: " + e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// Defaults of the flags that differ from the library's.
const (
	defaultHTTPAddr        = ":8080"
	defaultSchema          = "registrar"
	defaultShutdownTimeout = 30 * time.Second
)

// schemaPattern is what -schema accepts: a plain SQL identifier, as
// postgres.Migrate requires, within PostgreSQL's 63 bytes.
var schemaPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// envFlag is a flag and the environment variable that sets it when the
// flag is not given.
type envFlag struct {
	name, env string
}

// flags are the command's flags with their environment variables, in the
// order of the documentation (docs/production.md).
var flags = []envFlag{
	{"kafka-brokers", "REGISTRAR_KAFKA_BROKERS"},
	{"kafka-client-id", "REGISTRAR_KAFKA_CLIENT_ID"},
	{"kafka-version", "REGISTRAR_KAFKA_VERSION"},
	{"kafka-create-topics", "REGISTRAR_KAFKA_CREATE_TOPICS"},
	{"partitions", "REGISTRAR_KAFKA_PARTITIONS"},
	{"replication-factor", "REGISTRAR_KAFKA_REPLICATION_FACTOR"},
	{"kafka-tls", "REGISTRAR_KAFKA_TLS"},
	{"kafka-sasl-mechanism", "REGISTRAR_KAFKA_SASL_MECHANISM"},
	{"kafka-sasl-user", "REGISTRAR_KAFKA_SASL_USER"},
	{"kafka-sasl-password", "REGISTRAR_KAFKA_SASL_PASSWORD"},
	{"pg-dsn", "REGISTRAR_PG_DSN"},
	{"schema", "REGISTRAR_PG_SCHEMA"},
	{"pg-max-conns", "REGISTRAR_PG_MAX_CONNS"},
	{"consul-addr", "CONSUL_HTTP_ADDR"},
	{"consul-token", "CONSUL_HTTP_TOKEN"},
	{"contract", "REGISTRAR_CONTRACT"},
	{"group", "REGISTRAR_GROUP"},
	{"batch-size", "REGISTRAR_BATCH_SIZE"},
	{"batch-wait", "REGISTRAR_BATCH_WAIT"},
	{"state-cache", "REGISTRAR_STATE_CACHE"},
	{"kafka-linger", "REGISTRAR_KAFKA_LINGER"},
	{"http", "REGISTRAR_HTTP_ADDR"},
	{"drain-delay", "REGISTRAR_DRAIN_DELAY"},
	{"shutdown-timeout", "REGISTRAR_SHUTDOWN_TIMEOUT"},
	{"log-level", "REGISTRAR_LOG_LEVEL"},
	{"log-format", "REGISTRAR_LOG_FORMAT"},
}

// parseConfig reads the flags in args, each falling back to its
// environment variable (read with env) when it is not given, and checks
// the result. Every problem is reported at once, as a *configError naming
// the flag (and the variable, when the value came from it); no error
// repeats a secret's value. Usage goes to usage.
func parseConfig(args []string, env func(string) string, usage io.Writer) (config, error) {
	var (
		c                               config
		brokers, level, mechanism       string
		partitions, replication, maxCon int
	)
	fs := flag.NewFlagSet("production", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&brokers, "kafka-brokers", "", "Kafka bootstrap `brokers`, comma-separated host:port (required)")
	fs.StringVar(&c.kafkaClientID, "kafka-client-id", kafka.DefaultClientID, "client id of the Kafka connections")
	fs.StringVar(&c.kafkaVersion, "kafka-version", kafka.DefaultVersion, "Kafka `version` the brokers run")
	fs.BoolVar(&c.kafkaCreateTopics, "kafka-create-topics", false, "create missing topics (-partitions, -replication-factor; the snapshot topic compacted)")
	fs.IntVar(&partitions, "partitions", kafka.DefaultPartitions, "partitions of the topics -kafka-create-topics creates")
	fs.IntVar(&replication, "replication-factor", kafka.DefaultReplicationFactor, "replicas of the topics -kafka-create-topics creates")
	fs.BoolVar(&c.kafkaTLS, "kafka-tls", false, "connect to the brokers with TLS (system roots)")
	fs.StringVar(&mechanism, "kafka-sasl-mechanism", "", "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: none")
	fs.StringVar(&c.saslUser, "kafka-sasl-user", "", "SASL user")
	fs.StringVar(&c.saslPassword, "kafka-sasl-password", "", "SASL password (prefer the environment variable)")
	fs.StringVar(&c.pgDSN, "pg-dsn", "", "PostgreSQL `DSN` (required; prefer the environment variable, it may hold a password)")
	fs.StringVar(&c.pgSchema, "schema", defaultSchema, "PostgreSQL `schema` of the projection and outbox tables, migrated at start-up")
	fs.IntVar(&maxCon, "pg-max-conns", 0, "size of the PostgreSQL pool; 0: pgxpool's default, the larger of 4 and the CPUs")
	fs.StringVar(&c.consulAddr, "consul-addr", "127.0.0.1:8500", "Consul agent `address`, host:port or URL; one agent for the whole deployment")
	fs.StringVar(&c.consulToken, "consul-token", "", "Consul ACL token (prefer the environment variable)")
	fs.StringVar(&c.contractPath, "contract", "", "ONEX contract YAML `file`; empty: the built-in registration contract")
	fs.StringVar(&c.group, "group", "", "Kafka consumer `group`; empty: the contract's (shared with every orchestrator of that contract)")
	fs.IntVar(&c.batchSize, "batch-size", registrar.DefaultBatchSize, "largest micro-batch of one partition; 1 turns micro-batching off")
	fs.DurationVar(&c.batchWait, "batch-wait", 0, "how long a micro-batch waits for more messages; 0 takes what is waiting")
	fs.IntVar(&c.stateCache, "state-cache", registrar.DefaultStateCacheSize, "entities whose state the runtime keeps between micro-batches; 0 turns the cache off")
	fs.DurationVar(&c.kafkaLinger, "kafka-linger", 0, "how long the Kafka producer waits to fill a batch; 0 sends at once (see kafka.Config.Linger)")
	fs.StringVar(&c.httpAddr, "http", defaultHTTPAddr, "`address` of /healthz, /readyz and /metrics")
	fs.DurationVar(&c.drainDelay, "drain-delay", 0, "time /readyz reports draining before the consumer stops, for probes to notice")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "bound on the whole shutdown after SIGTERM or SIGINT")
	fs.StringVar(&level, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")

	fs.Usage = func() {
		fmt.Fprintln(usage, "Usage of production (each flag falls back to its environment variable when it is not given):")
		fs.PrintDefaults()
		fmt.Fprintln(usage, "\nEnvironment variables:")
		for _, ef := range flags {
			fmt.Fprintf(usage, "  %-34s -%s\n", ef.env, ef.name)
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, &configError{err}
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, ef := range flags {
		v := env(ef.env)
		if given[ef.name] || v == "" {
			continue
		}
		if err := fs.Set(ef.name, v); err != nil {
			// The flag package's message repeats the value: leave it out.
			errs = append(errs, fmt.Errorf("-%s: %s is not a valid value for it", ef.name, ef.env))
		}
	}
	source := func(name string) string {
		for _, ef := range flags {
			if ef.name == name && !given[name] && env(ef.env) != "" {
				return "-" + name + " (from " + ef.env + ")"
			}
		}
		return "-" + name
	}

	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if _, _, err := net.SplitHostPort(b); err != nil {
				errs = append(errs, fmt.Errorf("%s: broker %q is not host:port", source("kafka-brokers"), b))
			}
			c.kafkaBrokers = append(c.kafkaBrokers, b)
		}
	}
	if len(c.kafkaBrokers) == 0 {
		errs = append(errs, fmt.Errorf("%s is required", source("kafka-brokers")))
	}
	if partitions < 1 || partitions > 1<<16 {
		errs = append(errs, fmt.Errorf("%s %d: want 1 to 65536", source("partitions"), partitions))
	}
	if replication < 1 || replication > 1<<8 {
		errs = append(errs, fmt.Errorf("%s %d: want 1 to 256", source("replication-factor"), replication))
	}
	c.partitions, c.replication = partitions, replication
	switch c.saslMechanism = strings.ToUpper(mechanism); c.saslMechanism {
	case "", kafka.SASLPlain, kafka.SASLScramSHA256, kafka.SASLScramSHA512:
	default:
		errs = append(errs, fmt.Errorf("%s %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", source("kafka-sasl-mechanism"), mechanism))
	}
	if c.saslMechanism != "" && (c.saslUser == "" || c.saslPassword == "") {
		errs = append(errs, fmt.Errorf("%s needs -kafka-sasl-user and -kafka-sasl-password", source("kafka-sasl-mechanism")))
	}

	if c.pgDSN == "" {
		errs = append(errs, fmt.Errorf("%s is required", source("pg-dsn")))
	} else if err := (postgres.Config{DSN: c.pgDSN}).Validate(); err != nil {
		// Validate never repeats the DSN.
		errs = append(errs, fmt.Errorf("%s: %w", source("pg-dsn"), err))
	}
	if !schemaPattern.MatchString(c.pgSchema) {
		errs = append(errs, fmt.Errorf("%s %q: want a plain identifier (letters, digits, underscores) of at most 63 bytes", source("schema"), c.pgSchema))
	}
	if maxCon < 0 || maxCon > 1<<15 {
		errs = append(errs, fmt.Errorf("%s %d: want 0 (the default) to 32768", source("pg-max-conns"), maxCon))
	}
	c.pgMaxConns = maxCon

	if c.consulAddr == "" {
		errs = append(errs, fmt.Errorf("%s is required", source("consul-addr")))
	}
	if c.batchSize < 1 {
		errs = append(errs, fmt.Errorf("%s %d: want at least 1", source("batch-size"), c.batchSize))
	}
	if c.batchWait < 0 {
		errs = append(errs, fmt.Errorf("%s %v: want 0 or more", source("batch-wait"), c.batchWait))
	}
	if c.stateCache < 0 {
		errs = append(errs, fmt.Errorf("%s %d: want 0 or more", source("state-cache"), c.stateCache))
	}
	if c.kafkaLinger < 0 || c.kafkaLinger > kafka.MaxLinger {
		errs = append(errs, fmt.Errorf("%s %v: want 0 to %v", source("kafka-linger"), c.kafkaLinger, kafka.MaxLinger))
	}
	if _, _, err := net.SplitHostPort(c.httpAddr); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: want host:port (host may be empty)", source("http"), c.httpAddr))
	}
	if c.drainDelay < 0 {
		errs = append(errs, fmt.Errorf("%s %v: want 0 or more", source("drain-delay"), c.drainDelay))
	}
	if c.shutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%s %v: want a positive duration", source("shutdown-timeout"), c.shutdownTimeout))
	} else if c.drainDelay >= c.shutdownTimeout {
		errs = append(errs, fmt.Errorf("%s %v: want less than -shutdown-timeout %v", source("drain-delay"), c.drainDelay, c.shutdownTimeout))
	}
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: want debug, info, warn or error", source("log-level"), level))
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		errs = append(errs, fmt.Errorf("%s %q: want text or json", source("log-format"), c.logFormat))
	}
	if err := errors.Join(errs...); err != nil {
		return c, &configError{err}
	}
	return c, nil
}

// pgTarget describes the DSN's server for a log line: host, port and
// database, never the user's password or the DSN itself.
func pgTarget(dsn string) []any {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil
	}
	return []any{slog.String("host", pc.ConnConfig.Host), slog.String("port", strconv.Itoa(int(pc.ConnConfig.Port))),
		slog.String("database", pc.ConnConfig.Database)}
}
