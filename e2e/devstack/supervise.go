package devstack

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// Signal sends sig to the process group of the current run (SIGSTOP and
// SIGCONT pause and resume it; SIGTERM asks it to stop).
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	return syscall.Kill(-cmd.Process.Pid, sig)
}

// Restarts is how many times a Supervisor restarted the process.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// SupervisePolicy is how a Supervisor restarts a process that exited: after
// Backoff, doubled for each exit that follows a run shorter than
// StableAfter, up to MaxBackoff (like a container restart policy).
type SupervisePolicy struct {
	Backoff     time.Duration
	MaxBackoff  time.Duration
	StableAfter time.Duration
}

// DefaultSupervisePolicy restarts after 1 s, backing off to 30 s for a
// process that keeps exiting within a minute.
func DefaultSupervisePolicy() SupervisePolicy {
	return SupervisePolicy{Backoff: time.Second, MaxBackoff: 30 * time.Second, StableAfter: time.Minute}
}

// Supervise restarts p whenever its current run exits, until ctx is done;
// the returned function stops supervising and waits for the supervisor to
// finish. Stop or Kill a supervised process only through ctx first, or the
// supervisor starts it again.
func Supervise(ctx context.Context, p *Process, policy SupervisePolicy, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		backoff := policy.Backoff
		started := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.Done():
			}
			if time.Since(started) >= policy.StableAfter {
				backoff = policy.Backoff
			}
			logger.Warn("service exited; restarting it", slog.String("service", p.Name), slog.String("exit", errString(p.Err())), slog.Duration("in", backoff))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			if err := p.start(); err != nil {
				logger.Error("restarting service", slog.String("service", p.Name), slog.Any("error", err))
			} else {
				p.mu.Lock()
				p.restarts++
				p.mu.Unlock()
			}
			started = time.Now()
			backoff = min(backoff*2, policy.MaxBackoff)
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
