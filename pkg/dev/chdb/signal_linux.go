package chdb

import (
	"syscall"
	"unsafe"
)

// kernelSigaction is the kernel's struct sigaction on linux/amd64 and arm64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const maxSignal = 64

type sigSnapshot [maxSignal + 1]kernelSigaction

// saveSignals records the current disposition of every signal with raw
// rt_sigaction calls, bypassing any libc wrapper.
func saveSignals() *sigSnapshot {
	var s sigSnapshot
	for sig := 1; sig <= maxSignal; sig++ {
		_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0,
			uintptr(unsafe.Pointer(&s[sig])), unsafe.Sizeof(s[sig].mask), 0, 0)
	}
	return &s
}

// restore puts back every disposition that changed since the snapshot.
func (s *sigSnapshot) restore() {
	for sig := 1; sig <= maxSignal; sig++ {
		if sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP) {
			continue
		}
		var cur kernelSigaction
		_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0,
			uintptr(unsafe.Pointer(&cur)), unsafe.Sizeof(cur.mask), 0, 0)
		if cur == s[sig] {
			continue
		}
		_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig),
			uintptr(unsafe.Pointer(&s[sig])), 0, unsafe.Sizeof(s[sig].mask), 0, 0)
	}
}
