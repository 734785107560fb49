// Package chservertest starts one in-process chserver per test binary and
// gives each test its own database on it.
package chservertest
