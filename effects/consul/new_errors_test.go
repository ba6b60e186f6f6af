package consul_test

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/intent"
)

// TestNewErrorsAreConfigErrors: New sends no request, so an agent that is
// not there is no error of New's, and what New does reject (a TLS file that
// cannot be read, an invalid config) is not retryable.
func TestNewErrorsAreConfigErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	e, err := consul.New(consul.Config{Address: closed})
	if err != nil {
		t.Fatalf("New with an unreachable agent: %v, want nil (no request is made)", err)
	}
	_ = e.Close()

	missing := filepath.Join(t.TempDir(), "no-such-ca.pem")
	for name, cfg := range map[string]consul.Config{
		"unreadable CA file": {Address: closed, Scheme: "https", TLS: consul.TLSConfig{CAFile: missing}},
		"negative timeout":   {Address: closed, Timeout: -1},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := consul.New(cfg)
			if err == nil {
				_ = e.Close()
				t.Fatal("New accepted the config")
			}
			if intent.IsRetryable(err) {
				t.Errorf("IsRetryable(%v) = true for a configuration error", err)
			}
		})
	}
}
