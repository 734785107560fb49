package kafkabroker

import "syscall"

// sysProcAttr puts the JVM in its own process group and has the kernel SIGKILL
// it if this process dies, so a crashed or timed-out test leaves no JVM behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
