package chwriter

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// ErrRejected is wrapped by Insert errors that are caused by the rows
// themselves: retrying the same rows fails the same way, so the caller
// isolates the offending rows instead of retrying. Every other Insert error
// (network, server overload, missing table, authentication) is transient.
var ErrRejected = errors.New("clickhouse rejected the rows")

// permanentCodes are the ClickHouse exception codes that blame the data of
// an insert rather than the server or the configuration.
var permanentCodes = map[int32]string{
	6:   "CANNOT_PARSE_TEXT",
	27:  "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
	36:  "BAD_ARGUMENTS",
	38:  "CANNOT_PARSE_DATE",
	41:  "CANNOT_PARSE_DATETIME",
	43:  "ILLEGAL_TYPE_OF_ARGUMENT",
	53:  "TYPE_MISMATCH",
	69:  "ARGUMENT_OUT_OF_BOUND",
	70:  "CANNOT_CONVERT_TYPE",
	72:  "CANNOT_PARSE_NUMBER",
	117: "INCORRECT_DATA",
	131: "TOO_LARGE_STRING_SIZE",
	190: "SIZES_OF_ARRAYS_DONT_MATCH",
	321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
	395: "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO",
	469: "VIOLATED_CONSTRAINT",
}

// IsPermanentCode reports whether a ClickHouse exception code blames the
// inserted data.
func IsPermanentCode(code int32) bool {
	_, ok := permanentCodes[code]
	return ok
}

// classify wraps err with ErrRejected when it blames the rows: a server
// exception with a permanent code, or a client-side column conversion
// error.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && IsPermanentCode(ex.Code) {
		return errors.Join(ErrRejected, err)
	}
	var conv *column.ColumnConverterError
	if errors.As(err, &conv) {
		return errors.Join(ErrRejected, err)
	}
	return err
}

// Unavailable reports whether err means ClickHouse could not be reached
// (refused or dropped connections, timeouts), as opposed to an answer.
func Unavailable(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}
