package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/bus/kafka"
	"github.com/registrar-go/registrar/bus/kafka/kafkatest"
	"github.com/registrar-go/registrar/intent"
)

func TestSASL(t *testing.T) {
	const user, password = "registrar", "s3cret-pa55word"
	for _, mech := range []string{kafka.SASLPlain, kafka.SASLScramSHA256, kafka.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			c := kafkatest.Start(t, kfake.EnableSASL(), kfake.Superuser(mech, user, password))
			b := c.NewBus(t, func(cfg *kafka.Config) { cfg.SASL = kafka.SASL{Mechanism: mech, User: user, Password: password} })
			roundTrip(t, b)

			cfg := c.Config()
			cfg.SASL = kafka.SASL{Mechanism: mech, User: user, Password: "wrong-" + password}
			cfg.Sarama = func(sc *sarama.Config) {
				kafkatest.Tune(sc)
				sc.Metadata.Retry.Max = 1
			}
			bad, err := kafka.New(cfg)
			if err == nil {
				_ = bad.Close()
				t.Fatalf("New with a wrong password succeeded")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error leaks the password: %v", err)
			}
			// As postgres.NewPool's authentication failures: the
			// operator fixes the credentials, and a retry succeeds.
			if !intent.IsRetryable(err) {
				t.Errorf("IsRetryable(%v) = false for a failed SASL handshake", err)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	server, roots := selfSigned(t)
	c := kafkatest.Start(t, kfake.TLS(server))
	b := c.NewBus(t, func(cfg *kafka.Config) { cfg.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12} })
	roundTrip(t, b)
}

// roundTrip publishes a message and reads it back.
func roundTrip(t *testing.T, b *kafka.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.Publish(ctx, &bus.Message{Topic: "secure", Key: []byte("k"), Value: []byte("hello")}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	var got log
	r := subscribe(t, b, "secure-reader", []string{"secure"}, got.handler())
	eventually(t, "the message", func() bool { return got.len() >= 1 })
	r.stop(t)
	if v := string(got.all()[0].Value); v != "hello" {
		t.Errorf("read %q, want hello", v)
	}
}

// selfSigned returns a server TLS config for 127.0.0.1 and the pool that
// trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kafkatest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, roots
}
