// Package lxcparse checks nvidiaprep's edits of LXC configs against
// liblxc's own config parser, through go-lxc (cgo). It holds only tests: a
// fuzz target that needs liblxc, kept apart so that package lxcconf stays
// pure Go and its own fuzzing fast.
package lxcparse
