package postgres

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	registrar "github.com/registrar-go/registrar"
	membus "github.com/registrar-go/registrar/bus/memory"
	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/health"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/internal/tcpproxy"
	"github.com/registrar-go/registrar/internal/testenv"
)

// TestReadinessFollowsTheStore: a registration Runtime on the Postgres
// store, whose pool dials through a TCP proxy, is ready; while the proxy is
// cut, /readyz answers 503 naming the store check (without the DSN or the
// password), /healthz stays 200; after the proxy is restored, /readyz is
// 200 again.
func TestReadinessFollowsTheStore(t *testing.T) {
	db := newTestDB(t)
	dsn := testenv.PostgresDSN(t)
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := tcpproxy.New(net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port))))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	host, port, _ := net.SplitHostPort(proxy.Addr())
	const canary = "canary-secret-4711"
	pool, err := NewPool(t.Context(), Config{DSN: dsn, MaxConns: 4, ConnectTimeout: time.Second,
		ConfigurePool: func(c *pgxpool.Config) error {
			p, err := strconv.Atoi(port)
			c.ConnConfig.Host, c.ConnConfig.Port = host, uint16(p)
			c.ConnConfig.Password = canary // trust auth ignores it; an error must not show it
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := NewStore(pool, StoreConfig{Schema: db.schema})
	if err != nil {
		t.Fatal(err)
	}
	exec := intent.NewExecutor()
	if err := RegisterEffects(exec, pool, EffectConfig{Schema: db.schema}); err != nil {
		t.Fatal(err)
	}
	reg := memory.NewRegistry(memory.RegistryConfig{})
	for _, typ := range []string{"consul.register", "consul.deregister", "consul.pass_ttl"} {
		if err := exec.Register(typ, reg); err != nil {
			t.Fatal(err)
		}
	}
	b, err := membus.New(membus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rt, err := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{NoSweeper: true},
		registrar.WithRetryBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	readyz := httptest.NewServer(health.Readyz(rt))
	defer readyz.Close()
	healthz := httptest.NewServer(health.Healthz(rt))
	defer healthz.Close()
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	waitFor := func(what string, want int) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := get(readyz.URL)
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz still %d: %s", what, code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	waitFor("start", http.StatusOK)
	proxy.Cut()
	body := waitFor("cut", http.StatusServiceUnavailable)
	var rep struct {
		Status string         `json:"status"`
		Checks []health.Check `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	storeFailed := false
	for _, c := range rep.Checks {
		if c.Name == registrar.CheckStore && !c.OK && c.Error != "" {
			storeFailed = true
		}
	}
	if rep.Status != health.StatusNotReady || !storeFailed {
		t.Errorf("while cut: %s; want not_ready with the store check failed", body)
	}
	if strings.Contains(body, canary) || strings.Contains(body, dsn) {
		t.Errorf("the readiness body leaks the DSN or the password: %s", body)
	}
	if code, body := get(healthz.URL); code != http.StatusOK {
		t.Errorf("/healthz while the store is down: %d %s", code, body)
	}
	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	waitFor("restore", http.StatusOK)
	if code, body := get(healthz.URL); code != http.StatusOK {
		t.Errorf("/healthz after restore: %d %s", code, body)
	}
}
