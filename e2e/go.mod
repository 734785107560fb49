module github.com/auditpipe/auditpipe/e2e

go 1.26

require github.com/auditpipe/auditpipe/pkg v0.0.0

replace github.com/auditpipe/auditpipe/pkg => ../pkg
