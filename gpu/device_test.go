package gpu

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDeviceFallback runs against the CPU build of ONNX Runtime installed by
// scripts/tools.sh: device auto must fall back to the CPU with one warning,
// device cuda must fail with ErrCUDAUnavailable.
func TestDeviceFallback(t *testing.T) {
	dir := modelDir(t, "tiny-emotion")
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	rt := testRuntime(t, logger)

	t.Run("auto falls back to cpu", func(t *testing.T) {
		cfg := testConfig(dir)
		cfg.Device = DeviceAuto
		cfg.GPUMemLimit = 1 << 30
		reg := prometheus.NewRegistry()
		c, err := rt.LoadClassifier(context.Background(), "emotion", cfg, logger, reg)
		if err != nil {
			if strings.Contains(err.Error(), "cuda") {
				t.Fatalf("auto did not fall back: %v", err)
			}
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if c.Device() != DeviceCPU {
			t.Skipf("a CUDA build of ONNX Runtime with a device is in use (device %s)", c.Device())
		}
		if n := strings.Count(logs.String(), "cuda unavailable, running on cpu"); n != 1 {
			t.Errorf("%d fallback warnings, want 1; logs:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("fallback is not logged as a warning:\n%s", logs.String())
		}
		if got := testutil.ToFloat64(c.m.metrics.info.WithLabelValues(DeviceCPU)); got != 1 {
			t.Errorf("textpulse_gpu_info{device=cpu} = %v, want 1", got)
		}
		if _, err := c.Classify(context.Background(), []string{"still works on the cpu"}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("cuda fails clearly", func(t *testing.T) {
		cfg := testConfig(dir)
		cfg.Device = DeviceCUDA
		c, err := rt.LoadClassifier(context.Background(), "emotion_cuda", cfg, logger, nil)
		if err == nil {
			_ = c.Close()
			t.Skip("a CUDA build of ONNX Runtime with a device is in use")
		}
		if !errors.Is(err, ErrCUDAUnavailable) || retryable(err) {
			t.Fatalf("error %v, want a permanent ErrCUDAUnavailable", err)
		}
		t.Logf("device cuda: %v", err)
	})
}

func TestNewRuntimeErrors(t *testing.T) {
	if _, err := NewRuntime("", discardLogger()); !errors.Is(err, ErrRuntime) {
		t.Errorf("empty path: %v, want ErrRuntime", err)
	}
	if _, err := NewRuntime("/nonexistent/libonnxruntime.so.1", discardLogger()); !errors.Is(err, ErrRuntime) {
		t.Errorf("missing library: %v, want ErrRuntime", err)
	}
	rt := testRuntime(t, nil)
	if _, err := NewRuntime(rt.libPath(), discardLogger()); !errors.Is(err, ErrRuntime) {
		t.Errorf("second runtime: %v, want ErrRuntime", err)
	}
	dir := modelDir(t, "tiny-emotion")
	c, err := rt.LoadClassifier(context.Background(), "emotion", testConfig(dir), discardLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Classify(context.Background(), []string{"x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Classify after Runtime.Close: %v, want ErrClosed", err)
	}
	if _, err := rt.LoadClassifier(context.Background(), "emotion", testConfig(dir), discardLogger(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("load after Runtime.Close: %v, want ErrClosed", err)
	}
}
