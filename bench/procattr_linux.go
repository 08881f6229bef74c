package main

import (
	"os/exec"
	"syscall"
)

// procAttr puts a server in a process group of its own (so that stopping
// it stops its workers too) that dies with this process, so an interrupted
// run leaves no server behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, sig)
	}
}

// syncDisks writes the kernel's dirty pages back to disk.
func syncDisks() { syscall.Sync() }
