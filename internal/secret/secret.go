// Package secret holds credentials so that they cannot leak through logs,
// metrics or printed configuration by accident.
package secret

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Redacted is what a non-empty Secret prints as.
const Redacted = "[redacted]"

// Secret is a credential. Its String, MarshalText, Format and LogValue
// methods print Redacted; only Reveal returns the value.
type Secret string

// Reveal returns the credential itself, for handing to a client library.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer with the redacted form.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer with the redacted form.
func (s Secret) GoString() string { return s.String() }

// Format implements fmt.Formatter so that no verb prints the value.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalText implements encoding.TextMarshaler with the redacted form.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it keeps the value.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}

// LogValue implements slog.LogValuer with the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Resolve returns s, or the content of file (with trailing newlines trimmed)
// when file is set. Setting both is an error.
func Resolve(s Secret, file string) (Secret, error) {
	if file == "" {
		return s, nil
	}
	if s != "" {
		return "", fmt.Errorf("secret given both inline and in file %s", file)
	}
	b, err := os.ReadFile(file) //nolint:gosec // The path comes from the operator's configuration.
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	return Secret(strings.TrimRight(string(b), "\r\n")), nil
}
