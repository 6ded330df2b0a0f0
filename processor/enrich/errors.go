package enrich

import "errors"

var (
	// ErrInvalidConfig means an engine's Config is out of range.
	ErrInvalidConfig = errors.New("invalid engine config")
	// ErrUnsettled is the failure of an item that Provider.Resolve left
	// neither done nor failed although its context had not ended: a
	// provider bug, reported rather than hidden.
	ErrUnsettled = errors.New("provider left the text unsettled")
)
