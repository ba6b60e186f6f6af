// Command registration runs registrar's registration workflow end to end.
//
// By default it simulates nodes on the in-memory bus and store. Each
// simulated node is a node.Node, the client a Go service embeds: it
// introspects, waits for its Accepted event, acks, and heartbeats once
// active; a fraction pause their heartbeats after the first and expire.
// Nodes, runtime and sweeper share one simulated clock (node.ManualClock),
// so minutes of workflow time take a second or two.
//
//	go run ./examples/registration                  # 100 nodes, 10% expire, live progress and a table
//	go run ./examples/registration -nodes 1000 -json
//	go run ./examples/registration -nodes 100000 -memprofile heap.pprof   # then go tool pprof -top heap.pprof
//	go run ./examples/registration -replay messages.jsonl
//	go run ./examples/registration -bus kafka -brokers 127.0.0.1:9092
//	go run ./examples/registration -http 127.0.0.1:8089       # then open http://127.0.0.1:8089/ (the status page), curl /v1/nodes, /metrics, /healthz, /readyz; Ctrl-C ends it
//	go run ./examples/registration -store postgres -pg postgres://postgres@127.0.0.1:5432/test -consul 127.0.0.1:8500
//
// -replay reads messages from a JSON-lines file, either kcat -J records
// ({"topic":...,"key":...,"payload":"<envelope JSON>"}) or
// {"topic":...,"key":...,"value":{envelope}}, runs them through the workflow
// in file order, and prints the resulting projections as JSON.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/registrar-go/registrar/node"
)

// worldConfig is the world the flags describe.
func (o options) worldConfig(clock func() time.Time, logOut io.Writer) worldConfig {
	return worldConfig{clock: clock, logOut: logOut, store: o.store, pgDSN: o.pgDSN, pgSchema: o.pgSchema,
		consulAddr: o.consul, bus: o.bus, brokers: o.brokerList(), group: o.group(), telemetry: o.httpAddr != ""}
}

// group is the consumer group: the contract's, with a run suffix on Kafka so
// that a rerun against the same brokers does not resume an earlier run's
// offsets. A new group would start at the topics' oldest messages, the
// earlier runs' included: newWorld commits its offsets at the topics' ends
// first (see startAtEnd).
func (o options) group() string {
	if o.bus != "kafka" {
		return ""
	}
	return fmt.Sprintf("node_registration_orchestrator-example-%d", time.Now().UnixNano())
}

// brokerList splits -brokers.
func (o options) brokerList() []string {
	var out []string
	for _, b := range strings.Split(o.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

type options struct {
	nodes     int
	expire    float64
	jitter    float64
	malformed int
	jsonOut   bool
	replay    string
	seed      int64
	timeout   time.Duration
	verbose   bool
	store     string
	pgDSN     string
	pgSchema  string
	consul    string
	bus       string
	brokers   string
	httpAddr  string
	memprof   string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("registration", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.nodes, "nodes", 100, "number of simulated nodes")
	fs.Float64Var(&o.expire, "expire", 0.1, "fraction of nodes that stop heartbeating and expire (0..1)")
	fs.Float64Var(&o.jitter, "jitter", node.DefaultJitter, "heartbeat jitter of the simulated nodes, a fraction of the interval in [0, 1)")
	fs.IntVar(&o.malformed, "malformed", 0, "number of malformed messages to mix in; each is dead-lettered")
	fs.BoolVar(&o.jsonOut, "json", false, "print only a final JSON summary")
	fs.StringVar(&o.replay, "replay", "", "replay messages from a JSON-lines `file` and print the projections")
	fs.Int64Var(&o.seed, "seed", 1, "random seed of the simulation")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this much real time")
	fs.BoolVar(&o.verbose, "v", false, "log the runtime's debug output to stderr")
	fs.StringVar(&o.store, "store", "memory", "projection store: memory or postgres")
	fs.StringVar(&o.pgDSN, "pg", "", "PostgreSQL `DSN` for -store postgres")
	fs.StringVar(&o.pgSchema, "pg-schema", "registrar_example", "PostgreSQL schema the example owns, named registrar...: dropped and recreated on every run")
	fs.StringVar(&o.bus, "bus", "memory", "event bus: memory or kafka")
	fs.StringVar(&o.brokers, "brokers", "", "Kafka `brokers` for -bus kafka, comma-separated host:port")
	fs.StringVar(&o.consul, "consul", "", "Consul agent `address` (host:port); the default is an in-memory registry")
	fs.StringVar(&o.httpAddr, "http", "", "serve the status page (/), the read API (/v1/), /metrics, /healthz and /readyz on `addr` (host:port), and keep serving after the simulation until interrupted")
	fs.StringVar(&o.memprof, "memprofile", "", "after the simulation, with the store and the bus still open, collect garbage and write a heap profile to `file` (go tool pprof), and print the live heap per node on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if o.nodes < 1 {
		errs = append(errs, fmt.Errorf("-nodes %d: want at least 1", o.nodes))
	}
	if o.expire < 0 || o.expire > 1 {
		errs = append(errs, fmt.Errorf("-expire %v: want a fraction in 0..1", o.expire))
	}
	if o.jitter < 0 || o.jitter >= 1 {
		errs = append(errs, fmt.Errorf("-jitter %v: want a fraction in [0, 1)", o.jitter))
	}
	if o.malformed < 0 {
		errs = append(errs, fmt.Errorf("-malformed %d: want 0 or more", o.malformed))
	}
	if o.store != "memory" && o.store != "postgres" {
		errs = append(errs, fmt.Errorf("-store %q: want memory or postgres", o.store))
	}
	if o.store == "postgres" && o.pgDSN == "" {
		errs = append(errs, errors.New("-store postgres needs -pg DSN"))
	}
	if !validSchema(o.pgSchema) {
		errs = append(errs, fmt.Errorf("-pg-schema %q: the schema is dropped on every run; want a name of the example's own, "+
			"starting with registrar, of lower-case letters, digits and underscores, at most 63 bytes", o.pgSchema))
	}
	if o.bus != "memory" && o.bus != "kafka" {
		errs = append(errs, fmt.Errorf("-bus %q: want memory or kafka", o.bus))
	}
	if o.bus == "kafka" && o.brokers == "" {
		errs = append(errs, errors.New("-bus kafka needs -brokers host:port"))
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout %v: want a positive duration", o.timeout))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	return o, errors.Join(errs...)
}

// schemaName is what -pg-schema accepts: a schema is dropped on every run,
// so it must be one of the example's own, such as registrar_example, never
// public or an application's.
var schemaName = regexp.MustCompile(`^registrar[a-z0-9_]*$`)

// validSchema reports whether -pg-schema may name schema: an unquoted
// PostgreSQL identifier (at most 63 bytes) that starts with registrar.
func validSchema(schema string) bool {
	return len(schema) <= 63 && schemaName.MatchString(schema)
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "registration:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.replay != "" {
		err = runReplay(ctx, o, os.Stdout, os.Stderr)
	} else {
		err = runSimulation(ctx, o, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "registration:", err)
		os.Exit(1)
	}
}
