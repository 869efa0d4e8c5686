// Package archtest holds the tests that keep the package graph as
// docs/architecture.md ("Invariants enforced") describes it. It has no code
// of its own.
package archtest
