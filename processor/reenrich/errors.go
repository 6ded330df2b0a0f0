package reenrich

import "errors"

var (
	// ErrCheckpointMismatch means the checkpoint file belongs to a run
	// with another filter or other stages; remove it to start over.
	ErrCheckpointMismatch = errors.New("checkpoint belongs to another run")
	// ErrNoStages means no stage is configured for the rows to select.
	ErrNoStages = errors.New("no stage to run")
)
