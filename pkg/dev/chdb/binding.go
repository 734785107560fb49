package chdb

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// lib holds the C entry points of one loaded libchdb.so (see chdb.h, CHDB_VERSION
// 26.7.3). Opaque C handles are unsafe.Pointer; they are never dereferenced in
// Go except chdb_connect's chdb_connection*.
type lib struct {
	path string

	version                  func() string
	setSignalHandlersEnabled func(enabled int32)
	connect                  func(argc int32, argv **byte) *unsafe.Pointer
	closeConn                func(conn *unsafe.Pointer)
	queryN                   func(conn unsafe.Pointer, q *byte, qlen uintptr, f *byte, flen uintptr) unsafe.Pointer
	queryWithParamsN         func(conn unsafe.Pointer, q *byte, qlen uintptr, f *byte, flen uintptr,
		names **byte, nameLens *uintptr, values **byte, valueLens *uintptr, count uintptr) unsafe.Pointer
	destroyQueryResult func(r unsafe.Pointer)
	resultBuffer       func(r unsafe.Pointer) unsafe.Pointer
	resultLength       func(r unsafe.Pointer) uintptr
	resultError        func(r unsafe.Pointer) string
	resultElapsed      func(r unsafe.Pointer) float64
	resultRowsRead     func(r unsafe.Pointer) uint64
	resultBytesRead    func(r unsafe.Pointer) uint64
	resultRowsWritten  func(r unsafe.Pointer) uint64
	resultBytesWritten func(r unsafe.Pointer) uint64

	streamInsertN           func(conn unsafe.Pointer, q *byte, qlen uintptr, f *byte, flen uintptr) unsafe.Pointer
	streamInsertWithParamsN func(conn unsafe.Pointer, q *byte, qlen uintptr, f *byte, flen uintptr,
		names **byte, nameLens *uintptr, values **byte, valueLens *uintptr, count uintptr) unsafe.Pointer
	streamAppend        func(s unsafe.Pointer, data *byte, n uintptr) int32
	streamDone          func(s unsafe.Pointer) unsafe.Pointer
	streamInsertError   func(s unsafe.Pointer) string
	destroyInsertStream func(s unsafe.Pointer)
}

// loadLib dlopens path and resolves every symbol the package uses. A missing
// symbol is an error rather than a panic.
func loadLib(path string) (l *lib, err error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	defer func() {
		// RegisterLibFunc panics on a missing symbol.
		if r := recover(); r != nil {
			l, err = nil, fmt.Errorf("binding %s: %v", path, r)
		}
	}()
	l = &lib{path: path}
	reg := func(fptr any, name string) { purego.RegisterLibFunc(fptr, h, name) }
	reg(&l.version, "chdb_version")
	reg(&l.setSignalHandlersEnabled, "chdb_set_signal_handlers_enabled")
	reg(&l.connect, "chdb_connect")
	reg(&l.closeConn, "chdb_close_conn")
	reg(&l.queryN, "chdb_query_n")
	reg(&l.queryWithParamsN, "chdb_query_with_params_n")
	reg(&l.destroyQueryResult, "chdb_destroy_query_result")
	reg(&l.resultBuffer, "chdb_result_buffer")
	reg(&l.resultLength, "chdb_result_length")
	reg(&l.resultError, "chdb_result_error")
	reg(&l.resultElapsed, "chdb_result_elapsed")
	reg(&l.resultRowsRead, "chdb_result_rows_read")
	reg(&l.resultBytesRead, "chdb_result_bytes_read")
	reg(&l.resultRowsWritten, "chdb_result_rows_written")
	reg(&l.resultBytesWritten, "chdb_result_bytes_written")
	reg(&l.streamInsertN, "chdb_stream_insert_n")
	reg(&l.streamInsertWithParamsN, "chdb_stream_insert_with_params_n")
	reg(&l.streamAppend, "chdb_stream_append")
	reg(&l.streamDone, "chdb_stream_done")
	reg(&l.streamInsertError, "chdb_stream_insert_error")
	reg(&l.destroyInsertStream, "chdb_destroy_insert_stream")
	return l, nil
}

// cParams lays out named parameters as the (pointer, length) arrays the
// *_with_params_n functions take. The slices must stay alive for the call.
type cParams struct {
	names, values       []*byte
	nameLens, valueLens []uintptr
	keep                [][]byte
}

func newCParams(params map[string]string) *cParams {
	p := &cParams{}
	for k, v := range params {
		kb, vb := append([]byte(k), 0), append([]byte(v), 0)
		p.keep = append(p.keep, kb, vb)
		p.names = append(p.names, &kb[0])
		p.values = append(p.values, &vb[0])
		p.nameLens = append(p.nameLens, uintptr(len(k)))
		p.valueLens = append(p.valueLens, uintptr(len(v)))
	}
	return p
}

// strPtr returns a pointer to s's bytes (nil for ""); C reads len(s) bytes.
func strPtr(s string) *byte {
	if s == "" {
		return nil
	}
	return unsafe.StringData(s)
}

func cStrings(args []string) ([]*byte, [][]byte) {
	ptrs := make([]*byte, len(args)+1)
	keep := make([][]byte, len(args))
	for i, a := range args {
		keep[i] = append([]byte(a), 0)
		ptrs[i] = &keep[i][0]
	}
	return ptrs, keep
}
