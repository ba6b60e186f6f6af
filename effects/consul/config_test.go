package consul_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
)

func TestConfigValidate(t *testing.T) {
	client, err := api.NewClient(&api.Config{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  consul.Config
		want []string // substrings of the error; none: valid
	}{
		{name: "zero"},
		{name: "host port", cfg: consul.Config{Address: "consul.internal:8500", Datacenter: "dc1", Token: "abc"}},
		{name: "https URL", cfg: consul.Config{Address: "https://consul.internal:8501", TLS: consul.TLSConfig{CAFile: "/ca.pem"}}},
		{name: "agent", cfg: consul.Config{Agent: client.Agent(), CheckTTL: time.Minute}},
		{name: "bad address", cfg: consul.Config{Address: "consul"}, want: []string{`address "consul": want host:port`}},
		{name: "bad port", cfg: consul.Config{Address: "consul:http"}, want: []string{`port "http"`}},
		{name: "bad URL scheme", cfg: consul.Config{Address: "ftp://consul:21"}, want: []string{`scheme "ftp" is not http or https`}},
		{name: "bad scheme", cfg: consul.Config{Scheme: "unix"}, want: []string{`scheme "unix": want http or https`}},
		{name: "scheme contradicts", cfg: consul.Config{Scheme: "http", Address: "https://c:1"}, want: []string{"contradicts"}},
		{name: "tls over http", cfg: consul.Config{Scheme: "http", TLS: consul.TLSConfig{InsecureSkipVerify: true}}, want: []string{"scheme is http"}},
		{name: "cert without key", cfg: consul.Config{TLS: consul.TLSConfig{CertFile: "c.pem"}}, want: []string{"CertFile and KeyFile"}},
		{name: "agent and connection", cfg: consul.Config{Agent: client.Agent(), Token: "secret-token"}, want: []string{"agent: set together with connection fields"}},
		{name: "agent and edit", cfg: consul.Config{Agent: client.Agent(), EditAPIConfig: func(*api.Config) {}}, want: []string{"EditAPIConfig"}},
		{name: "token with newline", cfg: consul.Config{Token: "secret\ntoken"}, want: []string{"token: contains whitespace"}},
		{name: "negative durations", cfg: consul.Config{Timeout: -1, CheckTTL: -1, DeregisterCriticalServiceAfter: -1},
			want: []string{"timeout: negative", "check TTL: negative", "deregister critical service after: negative"}},
		{name: "short TTL", cfg: consul.Config{CheckTTL: time.Millisecond}, want: []string{"below one second"}},
		{name: "every problem at once", cfg: consul.Config{Address: "x", Scheme: "ftp", Timeout: -1, TLS: consul.TLSConfig{KeyFile: "k"}},
			want: []string{"address", "scheme", "timeout", "CertFile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v\nwant it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Validate error shows the token: %v", err)
			}
			if _, nerr := consul.New(tt.cfg); nerr == nil {
				t.Errorf("New accepted a config that Validate rejects")
			}
		})
	}
}

func TestConfigStringHidesToken(t *testing.T) {
	const token = "0b6c1bd1-token-secret"
	cfg := consul.Config{Address: "127.0.0.1:8500", Token: token}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("config", "cfg", cfg, "ptr", &cfg)
	}
	fmt.Fprintf(&buf, "%v %+v %s", cfg, cfg, cfg)
	if strings.Contains(buf.String(), token) {
		t.Fatalf("token in formatted config:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "Token: set") {
		t.Errorf("formatted config does not say a token is set:\n%s", buf.String())
	}
}
