//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr runs a server process as cred, if not nil.
func sysProcAttr(cred *credential) *syscall.SysProcAttr {
	if cred == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: cred.uid, Gid: cred.gid}}
}
