package chserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
)

// ClickHouse error codes used by the server itself.
const (
	codeCannotReadAllData  = 33
	codeBadArguments       = 36
	codeQueryTooLarge      = 62 // SYNTAX_ERROR, as ClickHouse reports max_query_size
	codeAuthFailed         = 516
	codeUnknownCompression = 256 // UNKNOWN_COMPRESSION_METHOD
	codeNetworkError       = 210
	codeStdException       = 1001
)

// exception is an error with a ClickHouse code.
type exception struct {
	code int
	name string
	msg  string // full "Code: N. DB::Exception: ..." text
}

func (e *exception) Error() string { return e.msg }

func newException(code int, name, format string, args ...any) *exception {
	return &exception{
		code: code,
		name: name,
		msg:  fmt.Sprintf("Code: %d. DB::Exception: %s. (%s)", code, fmt.Sprintf(format, args...), name),
	}
}

// asException converts engine and server errors to an exception.
func asException(err error) *exception {
	var ex *exception
	if errors.As(err, &ex) {
		return ex
	}
	var ce *chdb.Error
	if errors.As(err, &ce) {
		msg := ce.Message
		if !strings.HasPrefix(msg, "Code: ") {
			msg = "Code: " + strconv.Itoa(ce.Code) + ". DB::Exception: " + msg
		}
		return &exception{code: ce.Code, name: ce.Name(), msg: msg}
	}
	return newException(codeStdException, "STD_EXCEPTION", "%s", err.Error())
}

// statusByCode maps exception codes to the status ClickHouse's HTTP handler
// uses for them; everything else is 500.
var statusByCode = map[int]int{
	// UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED
	192: http.StatusUnauthorized, 193: http.StatusUnauthorized, 194: http.StatusUnauthorized, 516: http.StatusUnauthorized,
	// READONLY, ACCESS_DENIED
	164: http.StatusForbidden, 497: http.StatusForbidden,
	// CANNOT_PARSE_*, CANNOT_READ_ALL_DATA, INCORRECT_DATA, SYNTAX_ERROR,
	// TYPE_MISMATCH, BAD_ARGUMENTS, ILLEGAL_TYPE_OF_ARGUMENT, UNKNOWN_SETTING,
	// BAD_QUERY_PARAMETER, ...
	6: 400, 25: 400, 26: 400, 27: 400, 32: 400, 33: 400, 36: 400, 38: 400, 41: 400, 42: 400, 43: 400,
	44: 400, 53: 400, 62: 400, 69: 400, 70: 400, 72: 400, 80: 400, 106: 400, 115: 400, 117: 400,
	118: 400, 167: 400, 168: 400, 169: 400, 394: 400, 457: 400, 472: 400,
	// UNKNOWN_FUNCTION, UNKNOWN_IDENTIFIER, UNKNOWN_TYPE, UNKNOWN_STORAGE,
	// UNKNOWN_TABLE, UNKNOWN_AGGREGATE_FUNCTION, UNKNOWN_FORMAT, UNKNOWN_DATABASE
	46: 404, 47: 404, 50: 404, 56: 404, 60: 404, 63: 404, 73: 404, 81: 404,
	// TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED
	159: http.StatusGatewayTimeout, 241: http.StatusInsufficientStorage,
}

func httpStatus(code int) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// writeException sends err as ClickHouse does: status, text body and the
// X-ClickHouse-Exception-Code header.
func writeException(w http.ResponseWriter, err error) *exception {
	ex := asException(err)
	h := w.Header()
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("X-ClickHouse-Exception-Code", strconv.Itoa(ex.code))
	if ex.name != "" {
		h.Set("X-ClickHouse-Exception-Name", ex.name)
	}
	w.WriteHeader(httpStatus(ex.code))
	_, _ = w.Write([]byte(ex.msg + "\n"))
	return ex
}
