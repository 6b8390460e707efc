package main

import (
	"os/exec"
	"syscall"
)

// setBenchProcAttr makes the bench's server die with the bench, so that an
// interrupted run leaves no server behind.
func setBenchProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
