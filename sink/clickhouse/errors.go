package clickhouse

import (
	"errors"
	"fmt"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// ErrAuthentication means the server refused the credentials: an unknown
// user, a wrong or missing password, or a user not allowed from this
// address. Retrying with the same configuration cannot succeed.
var ErrAuthentication = errors.New("clickhouse authentication failed")

// isAuthError reports server errors that refuse the credentials.
func isAuthError(err error) bool {
	var ex *ch.Exception
	if !errors.As(err, &ex) {
		return false
	}
	switch ex.Code {
	case 192, // UNKNOWN_USER
		193, // WRONG_PASSWORD
		194, // REQUIRED_PASSWORD
		195, // IP_ADDRESS_NOT_ALLOWED
		516: // AUTHENTICATION_FAILED
		return true
	}
	return false
}

// columnExists reports the server error of an ADD COLUMN whose column
// exists (DUPLICATE_COLUMN, 44).
func columnExists(err error) bool {
	var ex *ch.Exception
	return errors.As(err, &ex) && ex.Code == 44
}

// appendError is a client-side error while filling an insert column.
type appendError struct {
	column string
	err    error
}

func (e *appendError) Error() string { return fmt.Sprintf("append column %s: %v", e.column, e.err) }

func (e *appendError) Unwrap() error { return e.err }

// errorClass says how a failed INSERT is handled.
type errorClass string

const (
	// classTransient errors are retried: network, server overload, a
	// server that is down or restarting.
	classTransient errorClass = "transient"
	// classSchema errors are retried too, loudly: the table is missing or
	// its columns differ; an operator runs migrate and ingestion resumes.
	classSchema errorClass = "schema"
	// classData errors depend on the rows' content: retrying the same rows
	// fails again, so the pipeline isolates and dead-letters them.
	classData errorClass = "data"
)

// isDataCode reports server error codes that depend on the content of the
// inserted rows.
func isDataCode(code int32) bool {
	switch code {
	case 6, // CANNOT_PARSE_TEXT
		27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
		38,  // CANNOT_PARSE_DATE
		41,  // CANNOT_PARSE_DATETIME
		69,  // ARGUMENT_OUT_OF_BOUND
		117, // INCORRECT_DATA
		128, // TOO_LARGE_ARRAY_SIZE
		131, // TOO_LARGE_STRING_SIZE
		190, // SIZES_OF_ARRAYS_DOESNT_MATCH
		321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
		469: // VIOLATED_CONSTRAINT
		return true
	}
	return false
}

// isSchemaCode reports server error codes that mean the table does not
// match what the sink inserts, or that the user may not insert.
func isSchemaCode(code int32) bool {
	switch code {
	case 16, // NO_SUCH_COLUMN_IN_TABLE
		47,  // UNKNOWN_IDENTIFIER
		53,  // TYPE_MISMATCH
		60,  // UNKNOWN_TABLE
		81,  // UNKNOWN_DATABASE
		497, // ACCESS_DENIED
		516: // AUTHENTICATION_FAILED
		return true
	}
	return false
}

// classify sorts an INSERT error. Anything not known to be data- or
// schema-related is transient: keep retrying rather than drop rows.
func classify(err error) errorClass {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		switch {
		case isDataCode(ex.Code):
			return classData
		case isSchemaCode(ex.Code):
			return classSchema
		}
		return classTransient
	}
	var ae *appendError
	if errors.As(err, &ae) {
		// Our column types are fixed, so a client-side append error
		// means the table's types differ from the schema.
		return classSchema
	}
	// Network errors, timeouts, resets and anything unknown.
	return classTransient
}

// ErrMetadataType reports an existing main table whose metadata column does
// not have the type of clickhouse.metadata_type. Migrate does not change the
// type of a table that holds data: keep the configured type, or create the
// tables anew under another clickhouse.table (and copy the rows over with
// INSERT ... SELECT).
var ErrMetadataType = errors.New("metadata column type differs from the configuration")

// ErrVectorIndex reports an existing embeddings table whose vector index
// differs from clickhouse.vector_distance and clickhouse.embedding_dims.
var ErrVectorIndex = errors.New("vector index differs from the configuration")
