//go:build !linux

package consultest

import "syscall"

// sysProcAttr returns nil: only Linux can tie the agent's life to the test
// process's; elsewhere the cleanup alone stops it.
func sysProcAttr() *syscall.SysProcAttr { return nil }
