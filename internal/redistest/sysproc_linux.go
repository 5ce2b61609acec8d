package redistest

import "syscall"

// sysProcAttr has the server receive SIGTERM if the test binary dies
// without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
