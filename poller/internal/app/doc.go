// Package app wires the poller: configuration, topics, the coordination
// group and one collector per owned source.
package app
