package testenv

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal kills the server when the test binary dies without
// running its cleanup (a panic, a timeout kill), so no MinIO outlives a run.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
