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
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchmarks are the benchmark names, in the order they run.
var benchmarks = []string{"memory", "kafka", "postgres", "runtime", "decide", "node"}

// defaultDSN is the PostgreSQL server the tests use too.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// options are the command line, with the sizes its mode implies.
type options struct {
	quick      bool
	only       []string
	rounds     int
	dsn        string
	cpuProfile string
	strict     bool
	filter     *regexp.Regexp

	memory   memoryParams
	kafka    kafkaParams
	postgres postgresParams
	runtime  runtimeParams
	node     nodeParams

	// scaleMode (-scale) runs the scale curve instead of the benchmarks.
	scaleMode bool
	scale     scaleParams
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main with its outputs and exit code explicit.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	p := newProgress(stderr)
	mode := "full"
	if o.quick {
		mode = "quick"
	}
	if o.scaleMode {
		mode = "scale"
	}
	p.printf("mode %s, %d rounds, GOMAXPROCS %d, %s", mode, o.rounds, runtime.GOMAXPROCS(0), runtime.Version())
	var t table
	if o.scaleMode {
		p.printf("scale: starting, sizes %v", o.scale.sizes)
		if err := benchScale(ctx, o, p, &t); err != nil {
			p.printf("scale: failed: %v", err)
			t.fail("scale", err)
		}
	}
	for _, name := range benchmarks {
		if o.scaleMode {
			break
		}
		if !slices.Contains(o.only, name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		p.printf("%s: starting", name)
		var err error
		switch name {
		case "memory":
			err = benchMemory(ctx, o, p, &t)
		case "kafka":
			err = benchKafka(ctx, o, p, &t)
		case "postgres":
			err = benchPostgres(ctx, o, p, &t)
		case "runtime":
			err = benchRuntime(ctx, o, p, &t)
		case "decide":
			err = benchDecide(ctx, o, p, &t)
		case "node":
			err = benchNode(ctx, o, p, &t)
		}
		if err != nil {
			p.printf("%s: failed: %v", name, err)
			t.fail(name, err)
		}
	}
	p.printf("done in %s", p.elapsed())
	fmt.Fprintf(stdout, "registrar benchmarks (%s mode, %d rounds, medians; ratios are medians of per-round ratios)\n\n", mode, o.rounds)
	if err := t.print(stdout); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if len(t.missed) > 0 {
		fmt.Fprintf(stdout, "\ntargets missed: %s\n", strings.Join(t.missed, ", "))
	}
	switch {
	case len(t.failed) > 0:
		fmt.Fprintf(stdout, "benchmarks failed: %s\n", strings.Join(t.failed, ", "))
		return 1
	case ctx.Err() != nil:
		return 1
	case o.strict && len(t.missed) > 0:
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run . [flags]   (in bench/)")
		fmt.Fprintln(stderr, "Runs registrar's benchmarks against its peers and prints one table; see README.md.")
		fs.PrintDefaults()
	}
	var o options
	var only string
	fs.BoolVar(&o.quick, "quick", false, "smaller counts and fewer rounds: under a minute, for CI")
	fs.StringVar(&only, "only", strings.Join(benchmarks, ","), "comma-separated benchmarks to run: "+strings.Join(benchmarks, ", "))
	fs.IntVar(&o.rounds, "rounds", 0, "interleaved rounds per benchmark (default 5, or 3 with -quick)")
	fs.StringVar(&o.dsn, "pg", "", "PostgreSQL DSN (default $REGISTRAR_TEST_PG, else "+defaultDSN+")")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a target is missed (by default only a failed benchmark does)")
	fs.BoolVar(&o.scaleMode, "scale", false, "run the scale curve instead of the benchmarks (not part of -quick nor of the default run): "+
		"at each -scale-sizes fleet size, the Runtime's rate, the memory store's and the Postgres table's bytes per node, and one overdue sweep")
	sizes := fs.String("scale-sizes", joinInts(defaultScaleSizes), "comma-separated fleet sizes of -scale")
	fs.IntVar(&o.scale.overdue, "scale-overdue", 1000, "projections overdue when -scale times a sweep (the same at every size)")
	fs.BoolVar(&o.scale.postgres, "scale-pg", true, "with -scale, also run the Runtime from the memory bus into Postgres at each size")
	filter := fs.String("filter", "", "run only the contenders whose name matches this regular expression (for profiling: ratios become n/a)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for name := range strings.SplitSeq(only, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(benchmarks, name) {
			return o, fmt.Errorf("-only: unknown benchmark %q (want some of %s)", name, strings.Join(benchmarks, ","))
		}
		o.only = append(o.only, name)
	}
	if len(o.only) == 0 {
		return o, errors.New("-only names no benchmark")
	}
	if *filter != "" {
		re, err := regexp.Compile(*filter)
		if err != nil {
			return o, fmt.Errorf("-filter: %w", err)
		}
		o.filter = re
	}
	for f := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-scale-sizes: %q is not a positive count", f)
		}
		o.scale.sizes = append(o.scale.sizes, n)
	}
	slices.Sort(o.scale.sizes)
	if o.scale.overdue < 1 {
		return o, fmt.Errorf("-scale-overdue %d: want at least 1", o.scale.overdue)
	}
	o.scale.sweeps = 15
	if o.rounds < 0 {
		return o, fmt.Errorf("-rounds %d is negative", o.rounds)
	}
	if o.dsn == "" {
		o.dsn = os.Getenv("REGISTRAR_TEST_PG")
	}
	if o.dsn == "" {
		o.dsn = defaultDSN
	}
	o.sizes()
	return o, nil
}

// sizes sets the benchmark sizes of the mode.
func (o *options) sizes() {
	if o.quick {
		if o.rounds == 0 {
			o.rounds = 3
		}
		o.memory = memoryParams{msgs: 50_000, publishers: 4, keys: 1024, payload: 256}
		o.kafka = kafkaParams{msgs: 50_000, publishers: 4096, callSize: 256, callers: 32, payload: 128, keys: 1000,
			lightMsgs: 1_000, lightPublishers: 8}
		o.postgres = postgresParams{rows: 10_000, single: 1_000, batched: 12_800, batchSize: 256}
		o.runtime = runtimeParams{memHeartbeats: 20_000, kafkaHeartbeats: 10_000, publishers: 8, kafkaPublishers: 256}
		o.node = nodeParams{nodes: 1_000, interval: 50 * time.Millisecond, window: 2 * time.Second}
		return
	}
	if o.rounds == 0 {
		o.rounds = 5
	}
	o.memory = memoryParams{msgs: 200_000, publishers: 4, keys: 1024, payload: 256}
	o.kafka = kafkaParams{msgs: 200_000, publishers: 4096, callSize: 256, callers: 32, payload: 128, keys: 1000,
		lightMsgs: 5_000, lightPublishers: 8}
	o.postgres = postgresParams{rows: 10_000, single: 3_000, batched: 51_200, batchSize: 256}
	o.runtime = runtimeParams{memHeartbeats: 200_000, kafkaHeartbeats: 100_000, publishers: 8, kafkaPublishers: 256}
	o.node = nodeParams{nodes: 10_000, interval: 500 * time.Millisecond, window: 5 * time.Second}
}

// progress writes timestamped progress lines.
type progress struct {
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) elapsed() time.Duration { return time.Since(p.start).Round(100 * time.Millisecond) }

func (p *progress) printf(format string, args ...any) {
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// contender is one side of a comparison; run measures one round and returns
// its figure.
type contender struct {
	name string
	unit string
	run  func(ctx context.Context) (float64, error)
}

// interleave runs o.rounds rounds of cs and returns each contender's
// figures, by round. Even rounds run the contenders in order, odd rounds in
// reverse, so that none always runs first (or right after the same
// neighbour). With warm, a first round runs and is thrown away: caches,
// pools, prepared statements and the heap settle before anything counts.
func interleave(ctx context.Context, o options, p *progress, bench string, warm bool, cs []contender) ([][]float64, error) {
	if warm {
		for _, c := range cs {
			if o.filter != nil && !o.filter.MatchString(c.name) {
				continue
			}
			if _, err := c.run(ctx); err != nil {
				return nil, fmt.Errorf("%s, warm-up: %w", c.name, err)
			}
		}
		p.printf("%s: warm-up round done", bench)
	}
	rounds := o.rounds
	out := make([][]float64, len(cs))
	for r := range rounds {
		// Rotate the order from round to round, so that over the rounds
		// every contender runs in every position (the first run of a round
		// is measurably slower on this machine).
		order := make([]int, len(cs))
		for i := range order {
			order[i] = (i + r) % len(cs)
		}
		for _, i := range order {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			c := cs[i]
			if o.filter != nil && !o.filter.MatchString(c.name) {
				continue
			}
			v, err := c.run(ctx)
			if err != nil {
				return out, fmt.Errorf("%s, round %d: %w", c.name, r+1, err)
			}
			out[i] = append(out[i], v)
			p.printf("%s: round %d/%d %-34s %s", bench, r+1, rounds, c.name, figure(v, c.unit))
		}
	}
	return out, nil
}

// figure formats v in unit: rates with k/M, ns/op as it is.
func figure(v float64, unit string) string {
	if strings.HasSuffix(unit, "/s") {
		return rate(v, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

// joinInts writes ns comma-separated.
func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
