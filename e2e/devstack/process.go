package devstack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is one service running as a child process. Its output goes, line
// by line and prefixed with its name, to the writer given to StartProcess.
// Methods are safe for concurrent use.
type Process struct {
	Name string
	bin  string
	args []string
	env  []string
	out  io.Writer

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	restarts int
}

// StartProcess starts bin with args and the extra environment env (added to
// this process's environment). The child is killed if this process dies
// (Linux parent-death signal) so nothing is left behind.
func StartProcess(name, bin string, args, env []string, out io.Writer) (*Process, error) {
	p := &Process{Name: name, bin: bin, args: args, env: env, out: out}
	return p, p.start()
}

func (p *Process) start() error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pw := &prefixWriter{prefix: fmt.Sprintf("[%s] ", p.Name), out: p.out}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s (%s): %w", p.Name, p.bin, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.err = cmd, done, nil
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		pw.flush()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Done is closed when the current run of the process has exited.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Err is the exit error of the last run, once Done is closed.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Pid is the current run's process id.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Kill sends SIGKILL (kill -9) and waits for the exit.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Stop sends SIGTERM to the process group and waits up to timeout for a graceful exit, then
// SIGKILL. It returns the exit error of a graceful exit, or an error saying
// the process had to be killed.
func (p *Process) Stop(timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	select {
	case <-done:
		return p.Err()
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // the whole process group
	select {
	case <-done:
		return p.Err()
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not stop within %s and was killed", p.Name, timeout)
	}
}

// Restart starts the process again after it exited (Kill or Stop first).
func (p *Process) Restart() error {
	select {
	case <-p.Done():
	default:
		return errors.New("restarting " + p.Name + ": still running")
	}
	return p.start()
}

// prefixWriter writes whole lines to out, each behind prefix.
type prefixWriter struct {
	prefix string
	out    io.Writer
	mu     sync.Mutex
	buf    []byte
}

var outMu sync.Mutex // lines of different processes never interleave

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i+1])
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

func (w *prefixWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(append(w.buf, '\n'))
		w.buf = nil
	}
}

func (w *prefixWriter) emit(line []byte) {
	outMu.Lock()
	defer outMu.Unlock()
	bw := bufio.NewWriter(w.out)
	_, _ = bw.WriteString(w.prefix)
	_, _ = bw.Write(line)
	_ = bw.Flush()
}
