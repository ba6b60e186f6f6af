package consul_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

const secretToken = "3f9a1c2e-secret-acl-token"

// fakeAgent is an HTTP server that answers every request with code and a
// body that echoes the request's ACL token, as a careless proxy might.
func fakeAgent(t *testing.T, code int) (addr string, sawToken *atomic.Bool) {
	t.Helper()
	sawToken = new(atomic.Bool)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("X-Consul-Token")
		if tok == secretToken {
			sawToken.Store(true)
		}
		http.Error(w, "request with token "+tok+" failed", code)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), sawToken
}

func newTestEffect(t *testing.T, cfg consul.Config) *consul.Effect {
	t.Helper()
	eff, err := consul.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = eff.Close() })
	return eff
}

// intents returns one intent of each type for a node of generation gen.
func intents(node uuid.UUID, nodeType string, gen int64) map[string]intent.Intent {
	id := registration.ServiceID(nodeType, node)
	corr := uuid.New()
	return map[string]intent.Intent{
		registration.IntentConsulReg: {Type: registration.IntentConsulReg, Target: id, CorrelationID: corr,
			Payload: &registration.ConsulRegister{NodeID: node, NodeType: nodeType, NodeVersion: "1.2.3",
				Endpoints:  map[string]string{"health": "http://10.1.2.3:8086/health", "api": "http://10.9.9.9:80"},
				Generation: gen, CorrelationID: corr}},
		registration.IntentConsulDereg: {Type: registration.IntentConsulDereg, Target: id, CorrelationID: corr,
			Payload: &registration.ConsulDeregister{NodeID: node, NodeType: nodeType, Generation: gen, CorrelationID: corr}},
		registration.IntentConsulPassTTL: {Type: registration.IntentConsulPassTTL, Target: id, CorrelationID: corr,
			Payload: &registration.ConsulPassTTL{NodeID: node, NodeType: nodeType, Generation: gen, At: time.Now(), CorrelationID: corr}},
	}
}

func TestErrorsAreClassified(t *testing.T) {
	tests := []struct {
		code      int
		retryable bool
	}{
		{http.StatusBadRequest, false},
		{http.StatusRequestEntityTooLarge, false},
		{http.StatusRequestURITooLong, false},
		{http.StatusUnprocessableEntity, false},
		// An ACL token the agent refuses is the environment's fault: it
		// may not have replicated yet, or lack a policy an operator adds.
		{http.StatusUnauthorized, true},
		{http.StatusForbidden, true},
		{http.StatusProxyAuthRequired, true},
		{http.StatusMethodNotAllowed, true},
		{http.StatusConflict, true},
		{http.StatusRequestTimeout, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			addr, sawToken := fakeAgent(t, tt.code)
			var logs bytes.Buffer
			eff := newTestEffect(t, consul.Config{Address: addr, Token: secretToken,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			node := uuid.New()
			id := registration.ServiceID("effect", node)
			for typ, in := range intents(node, "effect", 1) {
				_, err := eff.Execute(context.Background(), in)
				if err == nil {
					t.Fatalf("%s: no error from a %d response", typ, tt.code)
				}
				if got := intent.IsRetryable(err); got != tt.retryable {
					t.Errorf("%s: IsRetryable = %v, want %v: %v", typ, got, tt.retryable, err)
				}
				if got := intent.IsPermanent(err); got == tt.retryable {
					t.Errorf("%s: IsPermanent = %v, want %v: %v", typ, got, !tt.retryable, err)
				}
				if !strings.Contains(err.Error(), id) {
					t.Errorf("%s: error does not name the service id %s: %v", typ, id, err)
				}
				if strings.Contains(err.Error(), secretToken) {
					t.Errorf("%s: error shows the token: %v", typ, err)
				}
			}
			if !sawToken.Load() {
				t.Fatal("the agent never saw the token: the test proves nothing")
			}
			if strings.Contains(logs.String(), secretToken) {
				t.Errorf("log shows the token:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), "consul intent failed") {
				t.Errorf("no failure logged:\n%s", logs.String())
			}
		})
	}
}

func TestTransportErrorsAreRetryable(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		eff := newTestEffect(t, consul.Config{Address: closedAddr(t), Token: secretToken})
		for typ, in := range intents(uuid.New(), "effect", 1) {
			_, err := eff.Execute(context.Background(), in)
			if !intent.IsRetryable(err) || strings.Contains(err.Error(), secretToken) {
				t.Errorf("%s: want a retryable error without the token, got %v", typ, err)
			}
		}
	})
	t.Run("canceled context", func(t *testing.T) {
		addr, _ := fakeAgent(t, http.StatusOK)
		eff := newTestEffect(t, consul.Config{Address: addr, Token: secretToken})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for typ, in := range intents(uuid.New(), "effect", 1) {
			_, err := eff.Execute(ctx, in)
			if !intent.IsRetryable(err) || !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), secretToken) {
				t.Errorf("%s: want a retryable context.Canceled without the token, got %v", typ, err)
			}
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		eff := newTestEffect(t, consul.Config{Address: strings.TrimPrefix(srv.URL, "http://"), Timeout: 50 * time.Millisecond})
		_, err := eff.Execute(context.Background(), intents(uuid.New(), "effect", 1)[registration.IntentConsulReg])
		if !intent.IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("want a retryable deadline error, got %v", err)
		}
	})
}

// closedAddr returns a loopback address that refuses connections.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestBadPayloadsArePermanent(t *testing.T) {
	eff := newTestEffect(t, consul.Config{Address: "127.0.0.1:1"})
	tests := []struct {
		name string
		in   intent.Intent
		want string
	}{
		{"wrong type", intent.Intent{Type: registration.IntentConsulReg, Payload: &registration.UpdateRegistration{}}, "*registration.UpdateRegistration"},
		{"value not pointer", intent.Intent{Type: registration.IntentConsulReg, Payload: registration.ConsulRegister{NodeType: "x"}}, "registration.ConsulRegister"},
		{"nil payload", intent.Intent{Type: registration.IntentConsulDereg}, "<nil>"},
		{"nil pointer", intent.Intent{Type: registration.IntentConsulPassTTL, Payload: (*registration.ConsulPassTTL)(nil)}, "nil *registration.ConsulPassTTL"},
		{"empty node type", intent.Intent{Type: registration.IntentConsulReg, Payload: &registration.ConsulRegister{NodeID: uuid.New()}}, "empty node type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := eff.Execute(context.Background(), tt.in)
			if !intent.IsPermanent(err) || intent.IsRetryable(err) {
				t.Fatalf("Execute = %v, %v; want a permanent error", res, err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.in.Type) {
				t.Errorf("error %q does not name %q and the intent type", err, tt.want)
			}
		})
	}
}

func TestExecuteAfterClose(t *testing.T) {
	eff := newTestEffect(t, consul.Config{Address: "127.0.0.1:1"})
	if err := eff.Close(); err != nil {
		t.Fatal(err)
	}
	if err := eff.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := eff.Execute(context.Background(), intents(uuid.New(), "x", 1)[registration.IntentConsulReg])
	if !errors.Is(err, consul.ErrClosed) {
		t.Fatalf("Execute after Close: %v, want ErrClosed", err)
	}
}

func TestRegisterRoutesAllTypes(t *testing.T) {
	eff := newTestEffect(t, consul.Config{Address: "127.0.0.1:1"})
	exec := intent.NewExecutor()
	if err := eff.Register(exec); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulDereg, registration.IntentConsulPassTTL} {
		if got, ok := exec.Effect(typ); !ok || got != intent.IntentEffect(eff) {
			t.Errorf("Effect(%q) = %v, %v", typ, got, ok)
		}
	}
	if err := eff.Register(exec); err == nil {
		t.Error("registering twice: no error")
	}
}

// stuckProjections is a projection store that cannot serve a read: each
// Load waits until its context ends, as on a pool whose connections are
// all held.
type stuckProjections struct{ loads atomic.Int64 }

func (s *stuckProjections) Load(ctx context.Context, _ uuid.UUID) (*registration.Projection, error) {
	s.loads.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestProjectionReadIsBounded: in the fenced mode, a read of the
// projection that does not return is cut off at the effect's Timeout, and
// the intent fails retryable, even under a context without a deadline
// (the runtime's relay passes one).
func TestProjectionReadIsBounded(t *testing.T) {
	proj := &stuckProjections{}
	const timeout = 200 * time.Millisecond
	eff := newTestEffect(t, consul.Config{Address: closedAddr(t), Projections: proj, Timeout: timeout})
	ins := intents(uuid.New(), "effect", 1)
	for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulDereg} {
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := eff.Execute(context.Background(), ins[typ])
			done <- err
		}()
		select {
		case err := <-done:
			if !intent.IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: %v, want a retryable deadline error", typ, err)
			}
			if took := time.Since(start); took < timeout {
				t.Errorf("%s: failed after %v, before the timeout %v", typ, took, timeout)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: Execute still waits for the projection after 30 s; Timeout is %v", typ, timeout)
		}
	}
	if n := proj.loads.Load(); n != 2 {
		t.Errorf("%d loads, want 2", n)
	}
}
