//go:build tools

// Package consul pins the Consul agent that the integration tests run.
// It is its own module so that Consul's dependency tree never reaches the
// registrar module; scripts/consul.sh builds and caches the binary.
package consul

import _ "github.com/hashicorp/consul"
