package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaAuthTimeout bounds the first contact with the brokers at start.
const kafkaAuthTimeout = 15 * time.Second

// errKafkaAuth wraps a refusal that retrying cannot fix: credentials the
// brokers reject, or a broker certificate that the configured CAs do not
// trust.
var errKafkaAuth = errors.New("kafka refused the connection")

// checkKafkaAuth pings the brokers once, within kafkaAuthTimeout, and
// returns an error wrapping errKafkaAuth when they refuse the credentials or
// present an untrusted certificate. Any other outcome, such as brokers that
// are not up yet, returns nil: consuming waits for them as before.
func checkKafkaAuth(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, kafkaAuthTimeout)
	defer cancel()
	err := cl.Ping(ctx)
	if err == nil || !fatalKafkaError(err) {
		return nil
	}
	return fmt.Errorf("%w: %w", errKafkaAuth, err)
}

// fatalKafkaError reports SASL refusals and certificate verification
// failures.
func fatalKafkaError(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) ||
		errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid)
}
