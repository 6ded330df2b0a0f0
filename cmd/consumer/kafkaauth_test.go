package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestFatalKafkaError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		fatal bool
	}{
		{"sasl refused", fmt.Errorf("ping: %w", kerr.SaslAuthenticationFailed), true},
		{"mechanism not enabled", kerr.UnsupportedSaslMechanism, true},
		{"untrusted certificate", fmt.Errorf("unable to dial: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), true},
		{"wrong host name", x509.HostnameError{Host: "kafka"}, true},
		{"broker down", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{"timeout", context.DeadlineExceeded, false},
		{"leader moved", kerr.NotLeaderForPartition, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fatalKafkaError(tc.err); got != tc.fatal {
				t.Errorf("fatalKafkaError(%v) = %v, want %v", tc.err, got, tc.fatal)
			}
		})
	}
}
