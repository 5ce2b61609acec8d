//go:build !unix

package pgtest

import "syscall"

// sysProcAttr: there is no root to step down from here.
func sysProcAttr(*credential) *syscall.SysProcAttr { return nil }
