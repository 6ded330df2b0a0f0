package gpu

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/internal/textgen"
)

// Environment variables naming the ONNX Runtime library and the test models
// (exported by scripts/env.sh after scripts/tools.sh install).
const (
	envORTLib = "TEXTPULSE_ORT_LIB"
	envModels = "TEXTPULSE_TEST_MODELS"
	envPython = "TEXTPULSE_TEST_CHDB_PYTHON"
)

// testRuntime returns a Runtime on the library named by TEXTPULSE_ORT_LIB,
// closed at the end of the test; it skips (or fails under
// TEXTPULSE_TEST_REQUIRE_SERVICES=1) without one. ONNX Runtime allows one
// environment per process, so tests that use it run one after another.
func testRuntime(t testing.TB, logger *slog.Logger) *Runtime {
	t.Helper()
	lib := testenv.Lookup(t, envORTLib)
	if _, err := os.Stat(lib); err != nil {
		requireOrSkip(t, "%s=%s: %v (run scripts/tools.sh install)", envORTLib, lib, err)
	}
	if logger == nil {
		logger = discardLogger()
	}
	rt, err := NewRuntime(lib, logger)
	if err != nil {
		t.Fatalf("NewRuntime: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Runtime.Close: %v", err)
		}
	})
	return rt
}

// modelDir returns the directory of a test model built by scripts/tools.sh.
func modelDir(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(testenv.Lookup(t, envModels), name)
	if _, err := os.Stat(filepath.Join(dir, fileModel)); err != nil {
		requireOrSkip(t, "test model %s: %v (run scripts/tools.sh install)", name, err)
	}
	return dir
}

func requireOrSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(testenv.EnvRequire) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.ModelDir = dir
	cfg.Device = DeviceCPU
	cfg.IntraOpThreads = 1
	return cfg
}

// corpus returns n generated texts in several languages plus edge cases:
// empty, whitespace, emoji, accents, CJK, invalid UTF-8, and texts longer
// than any max_length.
func corpus(t testing.TB, n int) []string {
	t.Helper()
	g, err := textgen.New(textgen.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{
		"",
		"   ",
		"I love this! 😍😍",
		"This is the WORST service I have ever used. Never again.",
		"Café au lait, s'il vous plaît — très bien.",
		"今日はとても良い天気ですね。",
		"Das ist ja unglaublich!!! Warum???",
		"bad utf8: \xff\xfe end",
		strings.Repeat("a very long sentence that keeps going and going ", 80),
		strings.Repeat("🙂", 300),
	}
	more, err := g.Texts(max(n-len(texts), 0))
	if err != nil {
		t.Fatal(err)
	}
	return append(texts, more...)
}
