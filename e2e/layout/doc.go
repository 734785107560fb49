// Package layout holds the checks of the repository's layout: what a
// service binary may link.
package layout
