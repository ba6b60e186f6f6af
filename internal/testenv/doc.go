// Package testenv finds the real services integration tests run against.
//
// Tests ask for a service by calling one of its functions with their
// *testing.T. When the service's environment variable is unset, the test is
// skipped, unless the CI environment variable is "true": under CI a missing
// service fails the test, never a silent skip.
//
//	REGISTRAR_TEST_PG       PostgreSQL DSN, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//	REGISTRAR_CONSUL_BIN    path of a consul binary (scripts/consul.sh builds and caches one)
//	REGISTRAR_CHROMIUM      path of a Chromium for browser tests (scripts/browser.sh installs one);
//	                        without it, chromium on PATH
//
// make test sets all three.
package testenv
