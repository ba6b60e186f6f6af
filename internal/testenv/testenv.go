package testenv

import (
	"os"
	"os/exec"
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

// EnvChromium names the headless Chromium executable (scripts/browser.sh
// installs Debian's and prints its path; make test sets it).
const EnvChromium = "REGISTRAR_CHROMIUM"

// Chromium returns the path of the Chromium executable for browser
// tests: EnvChromium, else chromium on PATH; it skips the test without
// one (fails it under CI).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvChromium); p != "" {
		exe, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("%s=%s: %v", EnvChromium, p, err)
		}
		return exe
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return require(t, EnvChromium)
}
