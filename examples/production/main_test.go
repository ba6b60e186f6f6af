package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/effects/postgres"
	"github.com/registrar-go/registrar/internal/testenv"
	"github.com/registrar-go/registrar/node"
	"github.com/registrar-go/registrar/reducer/registration"
)

// syncBuffer is an io.Writer that the test reads while run writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logRecords returns the JSON log records written so far.
func (b *syncBuffer) logRecords(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err == nil {
			out = append(out, rec)
		}
	}
	return out
}

// envOf returns an env function over m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// randomHex returns n random bytes in hex.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get returns the status and body of GET url.
func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// withPassword returns dsn with its user's password set to secret. The
// test server trusts local connections, so the password is sent nowhere:
// it is there to be looked for in the output.
func withPassword(t *testing.T, dsn, secret string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Fatalf("%s: want a URL DSN", testenv.EnvPostgres)
	}
	user := "postgres"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, secret)
	return u.String()
}

// TestRun runs the command against an in-process Kafka cluster (kfake),
// the local Postgres and a Consul agent: three nodes register through
// package node, as Go services do, and become active; their projections
// are in Postgres and their services in Consul; /readyz, /healthz and
// /metrics answer; SIGTERM makes /readyz report draining and the command
// exit cleanly within its shutdown timeout, logging the steps in order,
// and the DSN's password appears nowhere in its output.
func TestRun(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	agent := consultest.Start(t)
	cluster := kafkatest.Start(t)
	ctx := t.Context()

	secret := "pw-" + randomHex(t, 8)
	schema := "registrar_prod_" + randomHex(t, 6)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		pool.Close()
	})

	const shutdownTimeout = 30 * time.Second
	args := []string{
		"-kafka-brokers", strings.Join(cluster.Addrs(), ","), "-kafka-create-topics", "-partitions", "4",
		"-schema", schema, "-group", "registrar-prod-test-" + randomHex(t, 4),
		"-http", "127.0.0.1:0", "-log-format", "json", "-batch-wait", "5ms",
		"-drain-delay", "1s", "-shutdown-timeout", shutdownTimeout.String(),
	}
	env := map[string]string{
		"REGISTRAR_PG_DSN": withPassword(t, dsn, secret), // from the environment, as deployments pass it
		"CONSUL_HTTP_ADDR": agent.Addr,
	}
	var stdout, stderr syncBuffer
	started := time.Now()
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), args, envOf(env), &stdout, &stderr) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped { // a failed test: stop the command before the services go
			_ = syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
			select {
			case err := <-done:
				t.Logf("run after the cleanup's SIGTERM: %v", err)
			case <-time.After(shutdownTimeout):
			}
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})

	var base string
	waitFor(t, 60*time.Second, "the serving log line", func() bool {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("run returned early: %v", err)
		default:
		}
		for _, rec := range stderr.logRecords(t) {
			if rec["msg"] == "serving" {
				base = "http://" + rec["addr"].(string)
				return true
			}
		}
		return false
	})
	waitFor(t, 60*time.Second, "/readyz 200", func() bool {
		code, _, err := get(base + "/readyz")
		return err == nil && code == http.StatusOK
	})

	nodeBus := cluster.NewBus(t)
	nodeCtx, stopNodes := context.WithCancel(ctx)
	var nodes sync.WaitGroup
	t.Cleanup(func() { stopNodes(); nodes.Wait() })
	ids := make([]uuid.UUID, 3)
	for i := range ids {
		ids[i] = uuid.New()
		n, err := node.New(nodeBus, node.Info{ID: ids[i], Type: "effect", Version: bus.Version{Major: 1, Minor: 2},
			Endpoints: map[string]string{"health": "http://127.0.0.1:9000/health"}}, node.WithoutShutdownAnnouncement())
		if err != nil {
			t.Fatal(err)
		}
		nodes.Go(func() { _ = n.Run(nodeCtx) })
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err = n.WaitActive(wctx)
		cancel()
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}

	store, err := postgres.NewStore(pool, postgres.StoreConfig{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		p, err := store.Get(ctx, id)
		if err != nil || p == nil || p.State != registration.StateActive {
			t.Fatalf("projection of %s: %+v, %v; want active", id, p, err)
		}
	}
	waitFor(t, 30*time.Second, "the nodes' services in Consul", func() bool {
		services, err := agent.Client.Agent().Services()
		if err != nil {
			return false
		}
		for _, id := range ids {
			if _, ok := services[registration.ServiceID("effect", id)]; !ok {
				return false
			}
		}
		return true
	})
	waitFor(t, 30*time.Second, "registrar_nodes{state=active} 3 in /metrics", func() bool {
		code, body, err := get(base + "/metrics")
		if err != nil || code != http.StatusOK || !strings.Contains(body, "registrar_messages_total") {
			return false
		}
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "registrar_nodes{") && strings.Contains(line, `state="active"`) && strings.HasSuffix(line, " 3") {
				return true
			}
		}
		return false
	})
	// The operator surface: the read API and the status page show the
	// three nodes, and their activations are among the transitions.
	if code, body, err := get(base + "/v1/stats"); err != nil || code != http.StatusOK || !strings.Contains(body, `"active":3`) {
		t.Errorf("/v1/stats: %d %v %s", code, err, body)
	}
	if code, body, err := get(base + "/v1/nodes?state=active"); err != nil || code != http.StatusOK || strings.Count(body, `"current_state":"active"`) != 3 {
		t.Errorf("/v1/nodes?state=active: %d %v %s", code, err, body)
	}
	if code, body, err := get(base + "/v1/transitions"); err != nil || code != http.StatusOK || strings.Count(body, `"state":"active"`) < 3 {
		t.Errorf("/v1/transitions: %d %v %s", code, err, body)
	}
	if code, body, err := get(base + "/"); err != nil || code != http.StatusOK || !strings.Contains(body, `<span class="n" id="total">3</span>`) {
		t.Errorf("status page: %d %v %.300s", code, err, body)
	}
	if code, body, err := get(base + "/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz: %d %s %v", code, body, err)
	}

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	sawDraining := false
	var runErr error
	giveUp := time.NewTimer(shutdownTimeout + 10*time.Second)
	defer giveUp.Stop()
	for waiting := true; waiting; {
		select {
		case runErr = <-done:
			stopped, waiting = true, false
		case <-giveUp.C:
			t.Fatalf("run did not return within %v of SIGTERM", shutdownTimeout+10*time.Second)
		case <-time.After(20 * time.Millisecond):
			if code, body, err := get(base + "/readyz"); err == nil && code == http.StatusServiceUnavailable &&
				strings.Contains(body, checkDraining) {
				sawDraining = true
			}
		}
	}
	took := time.Since(signalled)
	if runErr != nil || exitCode(runErr) != 0 {
		t.Fatalf("run after SIGTERM: %v (exit %d)", runErr, exitCode(runErr))
	}
	if took > shutdownTimeout {
		t.Errorf("shutdown took %v, more than -shutdown-timeout %v", took, shutdownTimeout)
	}
	if !sawDraining {
		t.Error("/readyz never answered 503 draining during the shutdown")
	}

	var steps []string
	complete, flushed := false, false
	for _, rec := range stderr.logRecords(t) {
		switch rec["msg"] {
		case "shutdown step":
			steps = append(steps, rec["step"].(string))
		case "shutdown complete":
			complete = true
		case "outbox flushed":
			flushed = true
		}
	}
	want := []string{stepReadiness, stepSweeper, stepConsumer, stepOutbox, stepKafka, stepHTTP, stepTelemetry, stepConsul, stepPostgres}
	if !slices.Equal(steps, want) {
		t.Errorf("shutdown steps logged %q, want %q", steps, want)
	}
	if !complete || !flushed {
		t.Errorf("log has shutdown complete %v, outbox flushed %v; want both", complete, flushed)
	}
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("%s carries the DSN's password", name)
		}
	}
	t.Logf("start to exit %v, shutdown %v", time.Since(started), took)
}

// TestBadConfiguration: a configuration the command refuses exits with
// status 2, the error names the flag (and the environment variable the
// value came from), and no secret appears in the error or the output.
func TestBadConfiguration(t *testing.T) {
	const secret = "hunter2-do-not-print"
	base := []string{"-kafka-brokers", "127.0.0.1:9092", "-pg-dsn", "postgres://registrar@127.0.0.1:5432/registry"}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string // in the error
	}{
		{"nothing", nil, nil, []string{"-kafka-brokers is required", "-pg-dsn is required"}},
		{"DSN does not parse", []string{"-kafka-brokers", "k:9092", "-pg-dsn", "postgres://registrar:" + secret + "@db:notaport/registry"},
			nil, []string{"-pg-dsn"}},
		{"DSN from the environment", []string{"-kafka-brokers", "k:9092"},
			map[string]string{"REGISTRAR_PG_DSN": "host=db password=" + secret + " sslmode=sometimes"},
			[]string{"-pg-dsn (from REGISTRAR_PG_DSN)"}},
		{"broker not host:port", []string{"-kafka-brokers", "kafka-1", "-pg-dsn", "postgres://db/registry"}, nil, []string{"-kafka-brokers"}},
		{"batch size", append(slices.Clone(base), "-batch-size", "0"), nil, []string{"-batch-size 0"}},
		{"batch size from the environment", base, map[string]string{"REGISTRAR_BATCH_SIZE": "many"},
			[]string{"-batch-size: REGISTRAR_BATCH_SIZE"}},
		{"state cache", append(slices.Clone(base), "-state-cache", "-1"), nil, []string{"-state-cache -1"}},
		{"kafka linger", base, map[string]string{"REGISTRAR_KAFKA_LINGER": "2s"}, []string{"-kafka-linger (from REGISTRAR_KAFKA_LINGER) 2s"}},
		{"schema", append(slices.Clone(base), "-schema", `registrar"; DROP SCHEMA public; --`), nil, []string{"-schema"}},
		{"log level", append(slices.Clone(base), "-log-level", "loud"), nil, []string{"-log-level"}},
		{"SASL without a user", append(slices.Clone(base), "-kafka-sasl-mechanism", "scram-sha-512"),
			map[string]string{"REGISTRAR_KAFKA_SASL_PASSWORD": secret}, []string{"-kafka-sasl-mechanism"}},
		{"http address", append(slices.Clone(base), "-http", "everywhere", "-consul-token", secret), nil, []string{"-http"}},
		{"shutdown timeout", append(slices.Clone(base), "-shutdown-timeout", "0s"), nil, []string{"-shutdown-timeout"}},
		{"drain longer than the shutdown", append(slices.Clone(base), "-drain-delay", "1m"), nil, []string{"-drain-delay"}},
		{"unknown flag", append(slices.Clone(base), "-brokers", "k:9092"), nil, []string{"-brokers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			err := run(t.Context(), tc.args, envOf(tc.env), &stdout, &stderr)
			if code := exitCode(err); code != 2 {
				t.Fatalf("exit %d (%v), want 2", code, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			for name, out := range map[string]string{"error": err.Error(), "stdout": stdout.String(), "stderr": stderr.String()} {
				if strings.Contains(out, secret) {
					t.Errorf("%s carries the secret: %s", name, out)
				}
			}
		})
	}
}

// TestConfigurationSources: a flag wins over its environment variable,
// the variable over the default.
func TestConfigurationSources(t *testing.T) {
	env := map[string]string{
		"REGISTRAR_KAFKA_BROKERS": "a:1, b:2", "REGISTRAR_PG_DSN": "postgres://db/x", "REGISTRAR_GROUP": "from-env",
		"REGISTRAR_BATCH_SIZE": "64", "CONSUL_HTTP_ADDR": "consul:8500", "CONSUL_HTTP_TOKEN": "token",
		"REGISTRAR_KAFKA_CREATE_TOPICS": "true", "REGISTRAR_LOG_LEVEL": "debug",
		"REGISTRAR_KAFKA_LINGER": "5ms", "REGISTRAR_STATE_CACHE": "1000",
	}
	cfg, err := parseConfig([]string{"-group", "from-flag", "-batch-wait", "10ms"}, envOf(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.kafkaBrokers, []string{"a:1", "b:2"}) || cfg.group != "from-flag" || cfg.batchSize != 64 ||
		cfg.batchWait != 10*time.Millisecond || cfg.consulAddr != "consul:8500" || cfg.consulToken != "token" ||
		!cfg.kafkaCreateTopics || cfg.logLevel.String() != "DEBUG" || cfg.pgSchema != defaultSchema ||
		cfg.httpAddr != defaultHTTPAddr || cfg.shutdownTimeout != defaultShutdownTimeout ||
		cfg.kafkaLinger != 5*time.Millisecond || cfg.stateCache != 1000 {
		t.Errorf("config %+v", cfg)
	}
}

// TestStartupFailure: a Postgres that cannot be reached fails the start
// with exit status 1 and an error that names Postgres, never the password.
func TestStartupFailure(t *testing.T) {
	const secret = "hunter3-do-not-print"
	var stdout, stderr syncBuffer
	err := run(t.Context(), []string{"-kafka-brokers", "127.0.0.1:1", "-http", "127.0.0.1:0",
		"-pg-dsn", "postgres://registrar:" + secret + "@127.0.0.1:1/registry?connect_timeout=2"},
		envOf(nil), &stdout, &stderr)
	if code := exitCode(err); code != 1 || !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("exit %d, error %v; want 1 and a Postgres error", code, err)
	}
	var ce *configError
	if errors.As(err, &ce) {
		t.Errorf("a start-up failure reported as configuration: %v", err)
	}
	for name, out := range map[string]string{"error": err.Error(), "stdout": stdout.String(), "stderr": stderr.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("%s carries the password: %s", name, out)
		}
	}
}

// TestEveryFlagHasAVariableAndIsDocumented: each flag the command defines
// has an environment variable, and docs/production.md's table lists both.
func TestEveryFlagHasAVariableAndIsDocumented(t *testing.T) {
	var usage bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, envOf(nil), &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	var defined []string
	for _, line := range strings.Split(usage.String(), "\n") {
		if name, ok := strings.CutPrefix(line, "  -"); ok {
			defined = append(defined, strings.Fields(name)[0])
		}
	}
	var listed []string
	for _, ef := range flags {
		listed = append(listed, ef.name)
	}
	slices.Sort(defined)
	slices.Sort(listed)
	if !slices.Equal(defined, listed) {
		t.Errorf("flags defined %q, flags with a variable %q", defined, listed)
	}
	doc, err := os.ReadFile("../../docs/production.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, ef := range flags {
		if row := "| `-" + ef.name + "` | `" + ef.env + "` |"; !strings.Contains(string(doc), row) {
			t.Errorf("docs/production.md has no row %q", row)
		}
	}
}
