// Package harness starts service and consumer processes for benchmarks,
// fault runs and integration tests, and reads their Prometheus metrics.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyPoll is how often WaitReady runs its probe.
const readyPoll = 250 * time.Millisecond

// tailBytes is how much of the output written to Config.Log a Process
// keeps for Tail.
const tailBytes = 64 << 10

// Config describes a process to start.
type Config struct {
	// Path is the binary; Args its arguments, without the binary itself.
	Path string
	Args []string
	// Env is added to this process's environment; nil inherits it
	// unchanged.
	Env []string
	// Dir is the working directory; empty means this process's.
	Dir string
	// LogFile, when set, is created (or truncated) and receives stdout
	// and stderr. Otherwise they go to Log, or are discarded when Log is
	// nil.
	LogFile string
	Log     io.Writer
	// Pdeathsig makes the kernel SIGKILL the process when the thread
	// that started it dies, so it ends even when this process exits
	// without cleaning up (a panic, a test timeout).
	Pdeathsig bool
}

// Process is a started process, the leader of its own process group.
// Its methods are safe for concurrent use.
type Process struct {
	cmd     *exec.Cmd
	logPath string
	tail    *tailBuffer
	done    chan struct{}
	// err is the result of cmd.Wait, set before done is closed.
	err error
}

// Start starts cfg's binary in a new process group. When ctx ends before
// the process, its group is killed. The process is reaped in the
// background; Wait returns its exit.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	cmd := exec.CommandContext(ctx, cfg.Path, cfg.Args...) //nolint:gosec // Binaries and arguments come from the caller.
	cmd.Dir = cfg.Dir
	if cfg.Env != nil {
		cmd.Env = append(os.Environ(), cfg.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cfg.Pdeathsig {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	p := &Process{cmd: cmd, logPath: cfg.LogFile, done: make(chan struct{})}
	cmd.Cancel = func() error { return p.killGroup() }
	var logFile *os.File
	switch {
	case cfg.LogFile != "":
		f, err := os.Create(cfg.LogFile)
		if err != nil {
			return nil, fmt.Errorf("create log of %s: %w", cfg.Path, err)
		}
		logFile = f
		cmd.Stdout, cmd.Stderr = f, f
	case cfg.Log != nil:
		p.tail = &tailBuffer{}
		w := io.MultiWriter(cfg.Log, p.tail)
		cmd.Stdout, cmd.Stderr = w, w
	}
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			_ = logFile.Close()
		}
		return nil, fmt.Errorf("start %s: %w", cfg.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		if logFile != nil {
			_ = logFile.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited and been reaped.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns what exec.Cmd.Wait
// returned: nil, an *exec.ExitError for a non-zero status or a signal, or
// the context's error when ctx ended it. It may be called many times.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// State returns the exit state, or nil while the process runs.
func (p *Process) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState
}

// Signal sends sig to the process itself (not its group). Signalling a
// process that has exited returns os.ErrProcessDone.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.cmd.Path, err)
	}
	return nil
}

// Kill sends SIGKILL to the whole process group, unless the process has
// already exited, and waits until the process is reaped. It returns an
// error only when the signal could not be sent; use Wait for the exit.
func (p *Process) Kill() error {
	if err := p.killGroup(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.done
	return nil
}

func (p *Process) killGroup() error {
	if p.Exited() {
		return os.ErrProcessDone
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", p.cmd.Process.Pid, err)
	}
	return nil
}

// Stop sends SIGTERM and waits up to timeout for the process to exit; then
// it kills the group and waits for that. It returns the exit of Wait, or
// an error saying the process did not stop in time (wrapping that exit).
func (p *Process) Stop(timeout time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("did not stop within %s: %w", timeout, p.Wait())
}

// WaitReady runs probe every 250 ms until it returns nil. It fails as soon
// as the process exits, after timeout with the last probe error, or when
// ctx ends.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, probe func() error) error {
	deadline := time.Now().Add(timeout)
	err := errors.New("not probed yet")
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("exited during startup: %v", p.cmd.ProcessState)
		}
		if err = probe(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait until ready: %w", ctx.Err())
		case <-time.After(readyPoll):
		}
	}
	return fmt.Errorf("not ready after %s: %w", timeout, err)
}

// Tail returns the last n lines of the process's output: of Config.LogFile,
// or of what was written to Config.Log (of its last 64 KiB). It is empty
// when the output was discarded or the file cannot be read.
func (p *Process) Tail(n int) string {
	if p.logPath != "" {
		s, _ := TailFile(p.logPath, n)
		return s
	}
	if p.tail != nil {
		return lastLines(p.tail.String(), n)
	}
	return ""
}

// TailFile returns the last n lines of the file at path.
func TailFile(path string, n int) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // Log files named by the caller.
	if err != nil {
		return "", fmt.Errorf("read log: %w", err)
	}
	return lastLines(string(b), n), nil
}

// lastLines returns the last n lines of s, without a trailing newline.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// tailBuffer keeps the last tailBytes written to it.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - tailBytes; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
