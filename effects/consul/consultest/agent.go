package consultest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/internal/testenv"
)

// Timeouts of the agent's lifecycle, generous for a busy machine.
const (
	readyTimeout = 60 * time.Second // start until leader and node registered
	stopTimeout  = 10 * time.Second // SIGTERM until SIGKILL
)

// Agent is a Consul agent in -dev mode (a single server, state in memory)
// that a test started with [Start].
type Agent struct {
	// Addr is the agent's HTTP API address, "127.0.0.1:{port}".
	Addr string
	// Client is a client of the agent's HTTP API. With [WithACL] it sends
	// ManagementToken; ACLs are off otherwise. It stays valid across
	// [Agent.Restart].
	Client *api.Client
	// Node is the agent's node name, unique per agent.
	Node string
	// ManagementToken is the secret of the agent's initial management
	// token, which may do anything, if the agent was started [WithACL];
	// empty otherwise. Tests use it to create the tokens and policies
	// they need.
	ManagementToken string

	tb        testing.TB
	bin       string
	dataDir   string
	ports     ports
	log       *tailBuffer
	closeIdle func()

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

var agentSeq atomic.Int64

// Option configures an agent that [Start] starts.
type Option interface{ apply(*Agent) }

type optionFunc func(*Agent)

func (f optionFunc) apply(a *Agent) { f(a) }

// WithACL starts the agent with ACLs enabled and a default policy of deny,
// as production agents run: a request without a token, or with a token the
// agent does not know, may do nothing. The agent's initial management token
// (a random UUID, in [Agent.ManagementToken]) is also its agent token, so it
// registers its own node; [Agent.Client] sends it. The default is ACLs off.
func WithACL() Option {
	return optionFunc(func(a *Agent) { a.ManagementToken = uuid.NewString() })
}

// Start starts a Consul agent in -dev mode, bound to 127.0.0.1 on free ports
// (HTTP, DNS, Serf LAN and WAN, server RPC, gRPC; HTTPS and gRPC-TLS off),
// with a temporary data directory and update checks disabled, and returns once
// it is the leader and has registered its own node. When the test ends the
// agent is stopped (SIGTERM, then SIGKILL) and waited for; if the test failed,
// the agent's log is logged.
//
// Start skips the test if REGISTRAR_CONSUL_BIN is not set, and fails it under
// CI=true. It must be called from the test's goroutine. Options are
// applied in order.
func Start(tb testing.TB, opts ...Option) *Agent {
	tb.Helper()
	bin := testenv.ConsulBinary(tb)
	a := &Agent{
		tb:      tb,
		bin:     bin,
		dataDir: tb.TempDir(),
		Node:    fmt.Sprintf("consultest-%d-%d", os.Getpid(), agentSeq.Add(1)),
		log:     &tailBuffer{max: 256 << 10},
	}
	for _, o := range opts {
		o.apply(a)
	}
	tb.Cleanup(a.cleanup)
	var err error
	for range 3 {
		if a.ports, err = freePorts(); err != nil {
			tb.Fatalf("consultest: choosing ports: %v", err)
		}
		a.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(a.ports.http))
		if err = a.start(); err == nil || !a.log.sinceMark("address already in use") {
			break
		}
	}
	if err != nil {
		tb.Fatalf("consultest: starting consul: %v", err) // the cleanup logs the agent's log
	}
	tr := defaultTransport()
	cfg := &api.Config{Address: a.Addr, Scheme: "http", Transport: tr, Token: a.ManagementToken}
	if a.Client, err = api.NewClient(cfg); err != nil {
		tb.Fatalf("consultest: client: %v", err)
	}
	a.closeIdle = tr.CloseIdleConnections
	return a
}

// Stop stops the agent (SIGTERM, then SIGKILL after 10 s) and waits until
// the process is gone. Requests to Addr then fail with "connection refused".
// Stopping a stopped agent does nothing. Stop may be called from any
// goroutine.
func (a *Agent) Stop() {
	a.tb.Helper()
	a.stop()
}

// Restart starts the agent again on the same ports, stopping it first if it
// is running, and returns once it is the leader again. The agent keeps its
// node name and data directory, as a restarted agent would; Consul 1.14
// restores from there the services and checks registered with the agent
// before (and their TTL checks' state), even in -dev mode, where only the
// servers' state is in memory. [Agent.RestartEmpty] starts one that lost
// them. Call it from the test's goroutine.
func (a *Agent) Restart() {
	a.tb.Helper()
	a.restart(false)
}

// RestartEmpty is Restart with the agent's data directory emptied first:
// the agent comes back without any of the services and checks registered
// with it before, as an agent that lost its disk (a replaced machine, a
// container without a volume) comes back. It keeps its node name and
// ports. Call it from the test's goroutine.
func (a *Agent) RestartEmpty() {
	a.tb.Helper()
	a.restart(true)
}

func (a *Agent) restart(empty bool) {
	a.tb.Helper()
	a.stop()
	if empty {
		entries, err := os.ReadDir(a.dataDir)
		if err != nil {
			a.tb.Fatalf("consultest: reading the data directory: %v", err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(a.dataDir, e.Name())); err != nil {
				a.tb.Fatalf("consultest: emptying the data directory: %v", err)
			}
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := a.start()
		if err == nil {
			return
		}
		// A port of the old process may linger, or another process may
		// have taken one: wait and retry on the same ports.
		if !a.log.sinceMark("address already in use") || time.Now().After(deadline) {
			a.tb.Fatalf("consultest: restarting consul: %v", err) // the cleanup logs the agent's log
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (a *Agent) args() []string {
	p := a.ports
	args := []string{
		"agent", "-dev",
		"-node", a.Node,
		"-bind", "127.0.0.1", "-client", "127.0.0.1", "-advertise", "127.0.0.1",
		"-data-dir", a.dataDir,
		"-http-port", strconv.Itoa(p.http),
		"-dns-port", strconv.Itoa(p.dns),
		"-serf-lan-port", strconv.Itoa(p.serfLAN),
		"-serf-wan-port", strconv.Itoa(p.serfWAN),
		"-server-port", strconv.Itoa(p.server),
		"-grpc-port", strconv.Itoa(p.grpc),
		"-grpc-tls-port", "-1",
		"-hcl", "disable_update_check = true",
		"-hcl", "ports { https = -1 }",
		"-log-level", "info",
	}
	if a.ManagementToken != "" {
		args = append(args, "-hcl", fmt.Sprintf(`acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = false
  tokens {
    initial_management = %q
    agent = %q
  }
}`, a.ManagementToken, a.ManagementToken))
	}
	return args
}

// start runs the agent process and waits until it is ready; on failure the
// process is gone.
func (a *Agent) start() error {
	a.log.mark()
	cmd := exec.Command(a.bin, a.args()...) //nolint:gosec // G204: the consul binary the test environment names
	cmd.Dir = a.dataDir
	cmd.Stdout, cmd.Stderr = a.log, a.log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	var waitErr error // set before exited is closed
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	a.mu.Lock()
	a.cmd, a.exited = cmd, exited
	a.mu.Unlock()
	if err := a.waitReady(exited); err != nil {
		select {
		case <-exited:
			err = fmt.Errorf("consul exited while starting (%w): %w", waitErr, err)
		default:
		}
		a.stop()
		return err
	}
	return nil
}

// waitReady polls the agent until it has a leader and its own node is in the
// catalog, so that services registered next are synced at once.
func (a *Agent) waitReady(exited <-chan struct{}) error {
	hc := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	defer hc.CloseIdleConnections()
	get := func(path string, v any) error {
		req, err := http.NewRequest(http.MethodGet, "http://"+a.Addr+path, nil)
		if err != nil {
			return err
		}
		if a.ManagementToken != "" {
			// Until the leader has created the management token, the
			// agent answers 403 "ACL not found".
			req.Header.Set("X-Consul-Token", a.ManagementToken)
		}
		resp, err := hc.Do(req) //nolint:gosec // G107: the agent this helper started
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	deadline := time.Now().Add(readyTimeout)
	var last error
	for {
		var leader string
		var node *api.CatalogNode
		switch err := get("/v1/status/leader", &leader); {
		case err != nil:
			last = err
		case leader == "":
			last = errors.New("no leader yet")
		default:
			switch err := get("/v1/catalog/node/"+a.Node, &node); {
			case err != nil:
				last = err
			case node == nil || node.Node == nil:
				last = errors.New("node not in the catalog yet")
			default:
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", readyTimeout, last)
		}
		select {
		case <-exited:
			return last
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (a *Agent) stop() {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.cmd, a.exited = nil, nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
	// Connections to the old process are dead; don't let the client pick one.
	if a.closeIdle != nil {
		a.closeIdle()
	}
}

func (a *Agent) cleanup() {
	a.stop()
	if a.tb.Failed() {
		a.tb.Logf("consultest: log of consul agent %s (%s):\n%s", a.Node, a.Addr, a.log.String())
	}
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
}

// ports are the agent's ports.
type ports struct{ http, dns, serfLAN, serfWAN, server, grpc int }

// freePorts picks six distinct loopback ports that are free for TCP and UDP
// (DNS and Serf use both). They are released before the agent binds them; a
// start that loses the race is retried.
func freePorts() (ports, error) {
	var held []interface{ Close() error }
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	var got []int
	for len(got) < 6 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ports{}, err
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // UDP side taken: keep the TCP listener held and pick another
		}
		held = append(held, pc)
		got = append(got, port)
	}
	return ports{http: got[0], dns: got[1], serfLAN: got[2], serfWAN: got[3], server: got[4], grpc: got[5]}, nil
}

// tailBuffer is a concurrency-safe writer that keeps the last max bytes.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	written int64 // bytes written in all
	marked  int64 // written at the last mark
}

// Write appends p, dropping the oldest bytes beyond max.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	b.written += int64(len(p))
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String returns the bytes kept.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// mark notes the current end, for sinceMark.
func (b *tailBuffer) mark() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.marked = b.written
}

// sinceMark reports whether s was written since the last mark.
func (b *tailBuffer) sinceMark(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	from := max(len(b.buf)-int(b.written-b.marked), 0)
	return bytes.Contains(b.buf[from:], []byte(s))
}
