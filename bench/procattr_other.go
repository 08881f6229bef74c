//go:build !linux

package main

import (
	"os/exec"
	"syscall"
)

// procAttr: only Linux can tie a child's life to its parent's; elsewhere an
// interrupted run may leave servers behind.
func procAttr() *syscall.SysProcAttr { return nil }

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		cmd.Process.Signal(sig)
	}
}

// syncDisks does nothing here: the harness measures on Linux.
func syncDisks() {}
