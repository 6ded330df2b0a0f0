package gpu

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Runtime owns the process-wide ONNX Runtime environment. ONNX Runtime
// allows one environment per process, so create one Runtime in main and load
// every model through it.
type Runtime struct {
	logger  *slog.Logger
	library string

	mu     sync.Mutex
	closed bool
	models map[closer]struct{}
}

// closer is a model loaded through a Runtime; close releases it.
type closer interface {
	Close() error
}

// NewRuntime loads the ONNX Runtime shared library at libraryPath
// (libonnxruntime.so.1.x; CPU or CUDA build) and initialises the
// environment. It fails when the library cannot be loaded or a Runtime
// already exists in this process.
func NewRuntime(libraryPath string, logger *slog.Logger) (*Runtime, error) {
	if libraryPath == "" {
		return nil, fmt.Errorf("%w: no onnxruntime library path given", ErrRuntime)
	}
	if ort.IsInitialized() {
		return nil, fmt.Errorf("%w: the onnxruntime environment is already initialised in this process", ErrRuntime)
	}
	ort.SetSharedLibraryPath(libraryPath)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("%w: initialise %s: %w", ErrRuntime, libraryPath, err)
	}
	logger.Info("onnxruntime loaded", "library", libraryPath, "version", ort.GetVersion())
	return &Runtime{logger: logger, library: libraryPath, models: make(map[closer]struct{})}, nil
}

func (rt *Runtime) libPath() string { return rt.library }

// Version is the version of the loaded ONNX Runtime library.
func (rt *Runtime) Version() string { return ort.GetVersion() }

// Close closes every model still open and destroys the environment.
func (rt *Runtime) Close() error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	models := rt.models
	rt.models = nil
	rt.mu.Unlock()
	for m := range models {
		_ = m.Close()
	}
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("destroy onnxruntime environment: %w", err)
	}
	return nil
}

func (rt *Runtime) track(m closer) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return ErrClosed
	}
	rt.models[m] = struct{}{}
	return nil
}

func (rt *Runtime) untrack(m closer) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	delete(rt.models, m)
}

// newSession creates a session for path on the configured device and
// returns the device it runs on ("cuda" or "cpu"). Device auto falls back to
// the CPU with one warning when CUDA cannot be used; device cuda fails.
func (rt *Runtime) newSession(path string, inputs, outputs []string, cfg Config, logger *slog.Logger) (*ort.DynamicAdvancedSession, string, error) {
	if cfg.Device == DeviceCUDA || cfg.Device == DeviceAuto {
		s, err := createSession(path, inputs, outputs, cfg, true)
		if err == nil {
			return s, DeviceCUDA, nil
		}
		if cfg.Device == DeviceCUDA {
			return nil, "", fmt.Errorf("%w: device %d: %w", ErrCUDAUnavailable, cfg.CUDADeviceID, err)
		}
		logger.Warn("cuda unavailable, running on cpu", "model_dir", cfg.ModelDir, "reason", err.Error())
	}
	s, err := createSession(path, inputs, outputs, cfg, false)
	if err != nil {
		return nil, "", err
	}
	return s, DeviceCPU, nil
}

func createSession(path string, inputs, outputs []string, cfg Config, cuda bool) (*ort.DynamicAdvancedSession, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("create session options: %w", err)
	}
	defer func() { _ = opts.Destroy() }()
	if cfg.IntraOpThreads > 0 {
		if err := opts.SetIntraOpNumThreads(cfg.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("set intra-op threads: %w", err)
		}
	}
	if cuda {
		if err := appendCUDA(opts, cfg); err != nil {
			return nil, err
		}
	}
	s, err := ort.NewDynamicAdvancedSession(path, inputs, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("create session for %s: %w", path, err)
	}
	return s, nil
}

func appendCUDA(opts *ort.SessionOptions, cfg Config) error {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("create cuda provider options: %w", err)
	}
	defer func() { _ = co.Destroy() }()
	kv := map[string]string{"device_id": strconv.Itoa(cfg.CUDADeviceID)}
	if cfg.GPUMemLimit > 0 {
		kv["gpu_mem_limit"] = strconv.FormatInt(cfg.GPUMemLimit, 10)
	}
	if err := co.Update(kv); err != nil {
		return fmt.Errorf("set cuda provider options: %w", err)
	}
	if err := opts.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("append cuda execution provider: %w", err)
	}
	return nil
}
