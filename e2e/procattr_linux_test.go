package e2e

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes a server die with the test binary, so that an
// interrupted run leaves no server behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
