package itest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a service process started by a test in a process group of its
// own.
type server struct {
	name string
	cmd  *exec.Cmd
	// logs are the files printed when the test fails.
	logs []string
	done chan struct{}
}

// startServer starts cmd in a new process group. When t ends the group is
// killed and, if t failed, the tail of each log file is printed.
func startServer(t testing.TB, name string, cmd *exec.Cmd, logs ...string) *server {
	t.Helper()
	// Pdeathsig also ends the server when the test binary dies without
	// running its cleanups (a panic, a timeout, a killed go test).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	s := &server{name: name, cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
		}
		if t.Failed() {
			s.printLogs(t)
		}
	})
	return s
}

// exited reports whether the process has ended.
func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// printLogs logs the last 60 lines of every log file.
func (s *server) printLogs(t testing.TB) {
	t.Helper()
	for _, path := range s.logs {
		b, err := os.ReadFile(path) //nolint:gosec // Paths under the test's temporary directory.
		if err != nil {
			t.Logf("%s log %s: %v", s.name, path, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		t.Logf("%s log %s (last %d lines):\n%s", s.name, path, min(60, len(lines)),
			strings.Join(lines[max(0, len(lines)-60):], "\n"))
	}
}

// waitReady polls ready every 250 ms until it returns nil. It fails t when
// the process exits first or timeout passes; the cleanup of startServer
// then prints the logs.
func (s *server) waitReady(t testing.TB, timeout time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	err := errors.New("not probed yet")
	for time.Now().Before(deadline) {
		if s.exited() {
			t.Fatalf("%s exited during startup: %v", s.name, s.cmd.ProcessState)
		}
		if err = ready(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s: %v", s.name, timeout, err)
}

// portOpen reports whether something accepts TCP connections on addr.
func portOpen(addr string) error {
	d := &net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn.Close()
}
