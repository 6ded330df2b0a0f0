package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/textpulse/textpulse/internal/textgen"
)

// fileSink writes events as JSONEachRow lines: one event per line, each
// followed by a newline. Events never hold a raw newline, since text
// escapes it, so every line is exactly one event, malformed ones included.
type fileSink struct {
	path string
	f    *os.File
	w    *bufio.Writer
	buf  []byte
	ctrs *counters
}

// newFileSink creates or truncates the file at path.
func newFileSink(path string, ctrs *counters) (*fileSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create output file: %w", err)
	}
	return &fileSink{path: path, f: f, w: bufio.NewWriterSize(f, 1<<20), ctrs: ctrs}, nil
}

// emit writes the next event and its newline.
func (s *fileSink) emit(_ context.Context, gen *textgen.Generator) error {
	ev, info := gen.NextInfo(s.buf[:0])
	s.buf = append(ev, '\n')
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	s.ctrs.add(info.Kind == textgen.KindValid, len(ev))
	return nil
}

// flush writes buffered lines to the file.
func (s *fileSink) flush(context.Context) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
}

// close flushes and closes the file.
func (s *fileSink) close() error {
	return errors.Join(s.flush(context.Background()), s.f.Close())
}
