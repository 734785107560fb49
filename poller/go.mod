module github.com/auditpipe/auditpipe/poller

go 1.26.0

require github.com/auditpipe/auditpipe/pkg v0.0.0

replace github.com/auditpipe/auditpipe/pkg => ../pkg

require github.com/auditpipe/auditpipe/schemas v0.0.0

replace github.com/auditpipe/auditpipe/schemas => ../schemas
