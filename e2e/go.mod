module github.com/auditpipe/auditpipe/e2e

go 1.26.0

require github.com/auditpipe/auditpipe/pkg v0.0.0

replace github.com/auditpipe/auditpipe/pkg => ../pkg

require github.com/auditpipe/auditpipe/schemas v0.0.0

require (
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	github.com/twmb/franz-go v1.22.3 // indirect
	github.com/twmb/franz-go/pkg/kadm v1.20.0 // indirect
	github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)

replace github.com/auditpipe/auditpipe/schemas => ../schemas
