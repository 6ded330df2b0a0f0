package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func start(t *testing.T, cfg Config) *Process {
	t.Helper()
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	return p
}

func signalled(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

func TestProcessExit(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		wantErr  bool
		wantTail string
	}{
		{"success", "echo one; echo two; echo three", false, "two\nthree"},
		{"failure", "echo boom >&2; exit 3", true, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "out.log")
			p := start(t, Config{Path: "sh", Args: []string{"-c", tt.script}, LogFile: log})
			err := p.Wait()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Wait() = %v, want error %v", err, tt.wantErr)
			}
			if !p.Exited() || p.State() == nil {
				t.Fatal("Exited() = false after Wait")
			}
			if got := p.Tail(2); got != tt.wantTail {
				t.Errorf("Tail(2) = %q, want %q", got, tt.wantTail)
			}
			if err := p.Kill(); err != nil {
				t.Errorf("Kill after exit = %v, want nil", err)
			}
		})
	}
}

func TestProcessKill(t *testing.T) {
	const ignoreTerm = "trap '' TERM; echo ready; while :; do sleep 1; done"
	tests := []struct {
		name   string
		script string
		stop   func(p *Process) error
		sig    syscall.Signal
	}{
		{"kill", "echo ready; sleep 30", func(p *Process) error { return p.Kill() }, syscall.SIGKILL},
		{"stop", "echo ready; exec sleep 30", func(p *Process) error {
			if err := p.Stop(5 * time.Second); !signalled(err, syscall.SIGTERM) {
				return fmt.Errorf("Stop() = %w, want the SIGTERM exit", err)
			}
			return nil
		}, syscall.SIGTERM},
		{"stop ignoring SIGTERM", ignoreTerm, func(p *Process) error {
			if err := p.Stop(300 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not stop within 300ms") {
				return fmt.Errorf("Stop() = %w, want the kill reported", err)
			}
			return nil
		}, syscall.SIGKILL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &Buffer{}
			p := start(t, Config{Path: "sh", Args: []string{"-c", tt.script}, Log: out})
			if err := p.WaitReady(context.Background(), 5*time.Second, func() error {
				if p.Tail(1) != "ready" {
					return errors.New("not started")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if p.Exited() {
				t.Fatal("Exited() = true for a running process")
			}
			if err := tt.stop(p); err != nil {
				t.Fatal(err)
			}
			if !p.Exited() {
				t.Fatal("Exited() = false after stopping")
			}
			if err := p.Wait(); !signalled(err, tt.sig) {
				t.Errorf("Wait() = %v, want death by %v", err, tt.sig)
			}
		})
	}
}

func TestProcessKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	p := start(t, Config{Path: "sh", Args: []string{"-c", "sleep 30 & echo $! > " + pidFile + "; wait"}})
	var child []byte
	if err := p.WaitReady(context.Background(), 5*time.Second, func() error {
		var err error
		child, err = os.ReadFile(pidFile) //nolint:gosec // Under t.TempDir.
		if err == nil && len(bytes.TrimSpace(child)) == 0 {
			err = errors.New("empty pid file")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	// The orphaned sleep is reparented and reaped by init; poll until
	// its /proc entry is gone or no longer a running sleep.
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + string(bytes.TrimSpace(child)) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %s still runs after Kill: %s", child, stat)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestProcessWaitReady(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		probe   func(calls int) error
		timeout time.Duration
		wantErr string
	}{
		{"ready at the third probe", "sleep 30", func(calls int) error {
			if calls < 3 {
				return errors.New("not yet")
			}
			return nil
		}, 5 * time.Second, ""},
		{"exits first", "exit 2", func(int) error { return errors.New("never") }, 10 * time.Second, "exited during startup: exit status 2"},
		{"timeout", "sleep 30", func(int) error { return errors.New("still starting") }, 600 * time.Millisecond, "not ready after 600ms: still starting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, Config{Path: "sh", Args: []string{"-c", tt.script}})
			if tt.name == "exits first" {
				<-p.Done()
			}
			calls := 0
			start := time.Now()
			err := p.WaitReady(context.Background(), tt.timeout, func() error { calls++; return tt.probe(calls) })
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("WaitReady() = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("WaitReady() = %v, want %q", err, tt.wantErr)
			}
			if time.Since(start) > tt.timeout+time.Second {
				t.Errorf("WaitReady took %s", time.Since(start))
			}
		})
	}
}

func TestProcessContextAndEnv(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		out := &Buffer{}
		p := start(t, Config{Path: "sh", Args: []string{"-c", `echo "$HARNESS_TEST_VAR"`}, Env: []string{"HARNESS_TEST_VAR=set"}, Log: out})
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out.String()); got != "set" {
			t.Errorf("output %q, want set", got)
		}
		if got := p.Tail(1); got != "set" {
			t.Errorf("Tail(1) = %q, want set", got)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p, err := Start(ctx, Config{Path: "sleep", Args: []string{"30"}, Pdeathsig: true})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("process still runs after its context ended")
		}
		if err := p.Wait(); !signalled(err, syscall.SIGKILL) {
			t.Errorf("Wait() = %v, want death by SIGKILL", err)
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		if _, err := Start(context.Background(), Config{Path: filepath.Join(t.TempDir(), "none")}); err == nil {
			t.Fatal("Start of a missing binary succeeded")
		}
	})
}
