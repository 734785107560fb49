// Package batch buffers consumed records per partition and decides when to
// flush them: on rows, bytes or age, whichever comes first.
package batch
