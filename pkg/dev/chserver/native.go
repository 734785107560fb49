package chserver

import (
	"encoding/binary"
)

// revisionCustomSerialization is the first Native revision with a
// custom-serialization byte per column (DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION).
const revisionCustomSerialization = 54454

// helloRevision is the revision() the handshake reports: 0 makes clickhouse-go
// decode later results as revision-0 Native, which is what the engine emits.
const helloRevision = 0

// encodeHello encodes the one-row handshake result
// (displayName(), version(), revision(), timezone()) as a Native block at
// the client's protocol revision.
func encodeHello(rev uint64, h hello) []byte {
	var b []byte
	if rev > 0 { // BlockInfo: field 1 is_overflows=0, field 2 bucket_num=-1, end
		b = binary.AppendUvarint(b, 1)
		b = append(b, 0)
		b = binary.AppendUvarint(b, 2)
		b = binary.LittleEndian.AppendUint32(b, 0xFFFFFFFF)
		b = binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, 4) // columns
	b = binary.AppendUvarint(b, 1) // rows
	str := func(b []byte, s string) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	column := func(name, typ string, data []byte) {
		b = str(b, name)
		b = str(b, typ)
		if rev >= revisionCustomSerialization {
			b = append(b, 0)
		}
		b = append(b, data...)
	}
	column("displayName()", "String", str(nil, h.displayName))
	column("version()", "String", str(nil, h.version))
	column("revision()", "UInt32", binary.LittleEndian.AppendUint32(nil, helloRevision))
	column("timezone()", "String", str(nil, h.timezone))
	return b
}
