package pgtest

import "syscall"

// sysProcAttr runs a server process as cred, if not nil, and has it
// receive SIGTERM (a "smart" shutdown) if the test binary dies without
// stopping it.
func sysProcAttr(cred *credential) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if cred != nil {
		attr.Credential = &syscall.Credential{Uid: cred.uid, Gid: cred.gid}
	}
	return attr
}
