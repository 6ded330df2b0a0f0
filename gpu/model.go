package gpu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/textpulse/textpulse/gpu/tokenizer"
)

// Files of the Hugging Face export layout.
const (
	fileModel     = "model.onnx"
	fileTokenizer = "tokenizer.json" //nolint:gosec // G101: a file name, not a credential.
	fileConfig    = "config.json"
)

// Graph input and output names of an optimum export.
const (
	inputIDs       = "input_ids"
	inputMask      = "attention_mask"
	inputTypeIDs   = "token_type_ids"
	outputLogits   = "logits"
	outputEmbedded = "last_hidden_state"
)

type modelKind int

const (
	kindClassifier modelKind = iota
	kindEmbedder
)

// hfConfig is the part of a Hugging Face config.json this package reads.
type hfConfig struct {
	NameOrPath            string            `json:"_name_or_path"`
	ModelType             string            `json:"model_type"`
	ID2Label              map[string]string `json:"id2label"`
	ProblemType           string            `json:"problem_type"`
	HiddenSize            int               `json:"hidden_size"`
	MaxPositionEmbeddings int               `json:"max_position_embeddings"`
	PadTokenID            *int              `json:"pad_token_id"`
}

// positionLimit is the longest input the position embeddings allow: RoBERTa
// family models start positions at pad_token_id+1.
func (c hfConfig) positionLimit() int {
	if c.MaxPositionEmbeddings <= 0 {
		return 0
	}
	switch c.ModelType {
	case "roberta", "xlm-roberta", "camembert", "longformer":
		pad := 1
		if c.PadTokenID != nil {
			pad = *c.PadTokenID
		}
		return c.MaxPositionEmbeddings - pad - 1
	}
	return c.MaxPositionEmbeddings
}

// model is a loaded ONNX model with its tokenizer and batcher; Classifier
// and Embedder wrap it.
type model struct {
	name    string
	id      string // "<name>@<version>"
	kind    modelKind
	device  string
	rt      *Runtime
	logger  *slog.Logger
	metrics *metrics

	tok        *tokenizer.Tokenizer
	padID      int64
	maxLen     int
	typeIDs    bool // the graph takes token_type_ids
	labels     []string
	sigmoid    bool
	width      int // labels (classifier) or hidden size (embedder)
	session    *ort.DynamicAdvancedSession
	runOptions *ort.RunOptions

	batcher *batcher

	// Reused by the batcher's worker only.
	ids, mask, types []int64
	out              []float32
}

// loadModel reads, checks and opens the model in cfg.ModelDir.
func (rt *Runtime) loadModel(ctx context.Context, kind modelKind, name string, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rt.mu.Lock()
	closed := rt.closed
	rt.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("load model %s: %w", cfg.ModelDir, ErrClosed)
	}
	dir := cfg.ModelDir
	if err := checkModelFiles(dir); err != nil {
		return nil, err
	}
	hc, err := readHFConfig(dir)
	if err != nil {
		return nil, err
	}
	m := &model{name: name, kind: kind, rt: rt, logger: logger}
	modelPath := filepath.Join(dir, fileModel)
	inputs, outputs, err := ort.GetInputOutputInfo(modelPath)
	if err != nil {
		return nil, modelErr(dir, ErrModelConfig, "read %s: %v", fileModel, err)
	}
	inputNames, err := m.checkInputs(dir, inputs)
	if err != nil {
		return nil, err
	}
	outName, err := m.checkOutputs(dir, hc, outputs)
	if err != nil {
		return nil, err
	}
	if err := m.loadTokenizer(dir, hc, cfg.MaxLength); err != nil {
		return nil, err
	}
	version, err := fileVersion(modelPath)
	if err != nil {
		return nil, modelErr(dir, err, "hash %s", fileModel)
	}
	modelName := hc.NameOrPath
	if modelName == "" {
		modelName = filepath.Base(filepath.Clean(dir))
	}
	m.id = modelName + "@" + version
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	m.session, m.device, err = rt.newSession(modelPath, inputNames, []string{outName}, cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	if m.runOptions, err = ort.NewRunOptions(); err != nil {
		_ = m.session.Destroy()
		return nil, fmt.Errorf("load model %s: create run options: %w", dir, err)
	}
	m.metrics = newMetrics(name, reg)
	// Warm-up: the first run allocates arenas and picks kernels.
	warm := m.tok.Encode("warm up the model")
	if err := m.infer([]*item{{enc: encoding{ids: warm.IDs, typeIDs: warm.TypeIDs}}}); err != nil {
		_ = m.release()
		return nil, fmt.Errorf("load model %s: warm up: %w", dir, err)
	}
	m.batcher = newBatcher(cfg.MaxBatch, cfg.MaxWait, !cfg.DisableBucketing, m.infer, m.metrics)
	if err := rt.track(m); err != nil {
		m.batcher.stop(m.runOptions)
		_ = m.release()
		return nil, err
	}
	m.metrics.info.WithLabelValues(m.device).Set(1)
	logger.Info("model loaded", "model", name, "model_id", m.id, "device", m.device,
		"max_length", m.maxLen, "max_batch", cfg.MaxBatch, "max_wait", cfg.MaxWait.String())
	return m, nil
}

// checkModelFiles checks that dir holds the files of a Hugging Face model
// directory.
func checkModelFiles(dir string) error {
	for _, f := range []string{fileModel, fileTokenizer, fileConfig} {
		st, err := os.Stat(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			return modelErr(dir, ErrMissingFile, "%s not found", f)
		}
		if err != nil {
			return modelErr(dir, err, "stat %s", f)
		}
		if st.IsDir() {
			return modelErr(dir, ErrMissingFile, "%s is a directory", f)
		}
	}
	return nil
}

func readHFConfig(dir string) (hfConfig, error) {
	var hc hfConfig
	b, err := os.ReadFile(filepath.Join(dir, fileConfig))
	if err != nil {
		return hc, modelErr(dir, err, "read %s", fileConfig)
	}
	if err := json.Unmarshal(b, &hc); err != nil {
		return hc, modelErr(dir, ErrModelConfig, "parse %s: %v", fileConfig, err)
	}
	return hc, nil
}

func (m *model) checkInputs(dir string, inputs []ort.InputOutputInfo) ([]string, error) {
	seen := map[string]bool{}
	for _, in := range inputs {
		switch in.Name {
		case inputIDs, inputMask, inputTypeIDs:
		default:
			return nil, modelErr(dir, ErrModelInputs, "unknown input %q (want input_ids, attention_mask and optionally token_type_ids)", in.Name)
		}
		if in.DataType != ort.TensorElementDataTypeInt64 || len(in.Dimensions) != 2 {
			return nil, modelErr(dir, ErrModelInputs, "input %s is %s %v, want int64 [batch, sequence]", in.Name, in.DataType, in.Dimensions)
		}
		seen[in.Name] = true
	}
	if !seen[inputIDs] || !seen[inputMask] {
		return nil, modelErr(dir, ErrModelInputs, "inputs %s lack input_ids or attention_mask", infoNames(inputs))
	}
	m.typeIDs = seen[inputTypeIDs]
	names := []string{inputIDs, inputMask}
	if m.typeIDs {
		names = append(names, inputTypeIDs)
	}
	return names, nil
}

func (m *model) checkOutputs(dir string, hc hfConfig, outputs []ort.InputOutputInfo) (string, error) {
	want, rank := outputLogits, 2
	if m.kind == kindEmbedder {
		want, rank = outputEmbedded, 3
	}
	var out *ort.InputOutputInfo
	for i := range outputs {
		if outputs[i].Name == want {
			out = &outputs[i]
		}
	}
	if out == nil {
		return "", modelErr(dir, ErrModelOutputs, "no %s output (outputs: %s)", want, infoNames(outputs))
	}
	if out.DataType != ort.TensorElementDataTypeFloat || len(out.Dimensions) != rank {
		return "", modelErr(dir, ErrModelOutputs, "output %s is %s %v, want float32 of rank %d", want, out.DataType, out.Dimensions, rank)
	}
	width := int(out.Dimensions[rank-1])
	if m.kind == kindEmbedder {
		if width <= 0 {
			width = hc.HiddenSize
		}
		if width <= 0 {
			return "", modelErr(dir, ErrModelOutputs, "hidden size unknown: output %s %v and no hidden_size in %s", want, out.Dimensions, fileConfig)
		}
		m.width = width
		return want, nil
	}
	labels, err := labelList(dir, hc.ID2Label)
	if err != nil {
		return "", err
	}
	if width > 0 && width != len(labels) {
		return "", modelErr(dir, ErrLabels, "%d labels in id2label but logits has width %d", len(labels), width)
	}
	switch hc.ProblemType {
	case "", "single_label_classification":
	case "multi_label_classification":
		m.sigmoid = true
	default:
		return "", modelErr(dir, ErrProblemType, "problem_type %q (want single_label_classification or multi_label_classification)", hc.ProblemType)
	}
	m.labels, m.width = labels, len(labels)
	return want, nil
}

func labelList(dir string, id2label map[string]string) ([]string, error) {
	if len(id2label) == 0 {
		return nil, modelErr(dir, ErrLabels, "%s has no id2label", fileConfig)
	}
	labels := make([]string, len(id2label))
	for k, v := range id2label {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(labels) || labels[i] != "" {
			return nil, modelErr(dir, ErrLabels, "id2label ids are not 0..%d (found %q)", len(labels)-1, k)
		}
		if v == "" {
			return nil, modelErr(dir, ErrLabels, "id2label[%s] is empty", k)
		}
		labels[i] = v
	}
	return labels, nil
}

func (m *model) loadTokenizer(dir string, hc hfConfig, maxLength int) error {
	path := filepath.Join(dir, fileTokenizer)
	limit := hc.positionLimit()
	if limit > 0 && maxLength > limit {
		return modelErr(dir, ErrModelConfig, "max_length %d exceeds the %d positions of the model", maxLength, limit)
	}
	tok, err := tokenizer.Load(path, tokenizer.Options{MaxLength: maxLength})
	if err != nil {
		return modelErr(dir, err, "load %s", fileTokenizer)
	}
	if maxLength == 0 && limit > 0 && (tok.MaxLength() == 0 || tok.MaxLength() > limit) {
		if tok, err = tokenizer.Load(path, tokenizer.Options{MaxLength: limit}); err != nil {
			return modelErr(dir, err, "load %s", fileTokenizer)
		}
	}
	m.tok, m.padID, m.maxLen = tok, tok.PadID(), tok.MaxLength()
	return nil
}

func infoNames(infos []ort.InputOutputInfo) string {
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = in.Name
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

// fileVersion is the first 12 hex digits of the file's sha256.
func fileVersion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// run tokenizes texts and sends them through the batcher; row i of the
// result is the output of texts[i] (logits or the pooled embedding).
func (m *model) run(ctx context.Context, texts []string) ([][]float32, error) {
	encs := make([]encoding, len(texts))
	for i, t := range texts {
		e := m.tok.Encode(t)
		encs[i] = encoding{ids: e.IDs, typeIDs: e.TypeIDs}
	}
	return m.batcher.submit(ctx, encs)
}

// infer runs one padded batch; it is called by the batcher's worker only.
func (m *model) infer(items []*item) error {
	n, width := len(items), 0
	for _, it := range items {
		width = max(width, len(it.enc.ids))
	}
	width = max(width, 1)
	size := n * width
	m.ids = grow(m.ids, size)
	m.mask = grow(m.mask, size)
	m.types = grow(m.types, size)
	for i, it := range items {
		row := i * width
		copy(m.ids[row:], it.enc.ids)
		l := len(it.enc.ids)
		for j := 0; j < width; j++ {
			if j >= l {
				m.ids[row+j] = m.padID
			}
			m.mask[row+j] = b2i(j < l)
			m.types[row+j] = 0
		}
		if m.typeIDs {
			copy(m.types[row:row+l], it.enc.typeIDs)
		}
	}
	outShape := ort.NewShape(int64(n), int64(m.width))
	if m.kind == kindEmbedder {
		outShape = ort.NewShape(int64(n), int64(width), int64(m.width))
	}
	m.out = grow(m.out, int(outShape.FlattenedSize()))
	shape := ort.NewShape(int64(n), int64(width))
	var values []ort.Value
	defer func() {
		for _, v := range values {
			_ = v.Destroy()
		}
	}()
	for _, buf := range [][]int64{m.ids, m.mask, m.types}[:2+b2i(m.typeIDs)] {
		t, err := ort.NewTensor(shape, buf[:size])
		if err != nil {
			return fmt.Errorf("create input tensor: %w", err)
		}
		values = append(values, t)
	}
	out, err := ort.NewTensor(outShape, m.out)
	if err != nil {
		return fmt.Errorf("create output tensor: %w", err)
	}
	values = append(values, out)
	start := time.Now()
	if err := m.session.RunWithOptions(values[:len(values)-1], values[len(values)-1:], m.runOptions); err != nil {
		return fmt.Errorf("%w: run %s on %d texts of %d tokens: %w", ErrInference, m.id, n, width, err)
	}
	m.metrics.duration.Observe(time.Since(start).Seconds())
	data := out.GetData()
	for i, it := range items {
		if m.kind == kindClassifier {
			it.out = append([]float32(nil), data[i*m.width:(i+1)*m.width]...)
			continue
		}
		it.out = meanPoolNormalize(data[i*width*m.width:(i+1)*width*m.width], len(it.enc.ids), m.width)
	}
	return nil
}

// meanPoolNormalize averages the first tokens rows of hidden (rows of
// width dim) and scales the result to unit length.
func meanPoolNormalize(hidden []float32, tokens, dim int) []float32 {
	acc := make([]float64, dim)
	for t := 0; t < tokens; t++ {
		row := hidden[t*dim : (t+1)*dim]
		for j, v := range row {
			acc[j] += float64(v)
		}
	}
	var norm float64
	for j := range acc {
		acc[j] /= float64(max(tokens, 1))
		norm += acc[j] * acc[j]
	}
	norm = max(math.Sqrt(norm), 1e-12)
	out := make([]float32, dim)
	for j := range acc {
		out[j] = float32(acc[j] / norm)
	}
	return out
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Close stops the batcher (pending calls fail with ErrClosed) and releases
// the session.
func (m *model) Close() error {
	if !m.batcher.stop(m.runOptions) {
		return nil
	}
	m.rt.untrack(m)
	return m.release()
}

func (m *model) release() error {
	var errs []error
	if m.runOptions != nil {
		errs = append(errs, m.runOptions.Destroy())
	}
	if m.session != nil {
		errs = append(errs, m.session.Destroy())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release model %s: %w", m.id, err)
	}
	return nil
}
