package itest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/harness"
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
	proc *harness.Process
	// logs are the files printed when the test fails.
	logs []string
}

// startServer starts cfg in a new process group. When t ends the group is
// killed and, if t failed, the tail of each log file is printed.
func startServer(t testing.TB, name string, cfg harness.Config, logs ...string) *server {
	t.Helper()
	// Pdeathsig also ends the server when the test binary dies without
	// running its cleanups (a panic, a timeout, a killed go test).
	cfg.Pdeathsig = true
	// The process group is killed when t ends, not through a context.
	p, err := harness.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	s := &server{name: name, proc: p, logs: logs}
	t.Cleanup(func() {
		go func() { _ = p.Kill() }()
		select {
		case <-p.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.Pid())
		}
		if t.Failed() {
			s.printLogs(t)
		}
	})
	return s
}

// printLogs logs the last 60 lines of every log file.
func (s *server) printLogs(t testing.TB) {
	t.Helper()
	for _, path := range s.logs {
		tail, err := harness.TailFile(path, 60)
		if err != nil {
			t.Logf("%s log %s: %v", s.name, path, err)
			continue
		}
		t.Logf("%s log %s (last %d lines):\n%s", s.name, path, strings.Count(tail, "\n")+1, tail)
	}
}

// waitReady polls ready every 250 ms until it returns nil. It fails t when
// the process exits first or timeout passes; the cleanup of startServer
// then prints the logs.
func (s *server) waitReady(t testing.TB, timeout time.Duration, ready func() error) {
	t.Helper()
	if err := s.proc.WaitReady(context.Background(), timeout, ready); err != nil {
		t.Fatalf("%s %v", s.name, err)
	}
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
