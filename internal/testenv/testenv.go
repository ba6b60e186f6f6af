package testenv

import (
	"os"
	"testing"
)

// Environment variables that name the services.
const (
	EnvPostgres   = "REGISTRAR_TEST_PG"
	EnvConsulBin  = "REGISTRAR_CONSUL_BIN"
	envCI         = "CI"
	missingSuffix = " is not set: run the tests with make test, which starts or builds what they need"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv(envCI) == "true" }

// require returns the variable's value, or skips the test (fails it under CI).
func require(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if InCI() {
		t.Fatalf("%s%s", name, missingSuffix)
	}
	t.Skipf("%s%s", name, missingSuffix)
	return ""
}

// PostgresDSN returns the DSN of the test PostgreSQL server.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	return require(t, EnvPostgres)
}

// ConsulBinary returns the path of the consul binary.
func ConsulBinary(t testing.TB) string {
	t.Helper()
	p := require(t, EnvConsulBin)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v", EnvConsulBin, p, err)
	}
	return p
}
