// Package ctmsg owns how a message names its container: "CT <vmid>: ...",
// once.
//
// Code below a per-container boundary (the hook's phases, the worker, an
// admin command's work on one container) returns errors that do not name the
// container; the boundary names it with Wrap. An error that already names
// it (a Named error for that container anywhere in its tree, however deep
// under %w) is left as it is, so no message can name it twice.
package ctmsg

import (
	"fmt"
	"strconv"
)

// Name is how messages name container vmid: "CT 101", as Proxmox does.
func Name(vmid int) string { return "CT " + strconv.Itoa(vmid) }

// Error is an error about one container. Its text names the container
// first, once: "CT 101: <Err>".
type Error struct {
	VMID int
	Err  error
}

func (e *Error) Error() string { return Name(e.VMID) + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Named is an error whose own text names its container (with Name): an
// *Error, or a typed error of a package that builds its sentence around the
// container (prestart's *RequiredError).
type Named interface {
	error
	NamedVMID() int
}

// NamedVMID is the container e names.
func (e *Error) NamedVMID() int { return e.VMID }

// Names reports whether err's text names container vmid: a Named error
// for it is in err's tree (Unwrap, errors.Join included).
func Names(err error, vmid int) bool {
	if err == nil {
		return false
	}
	if n, ok := err.(Named); ok && n.NamedVMID() == vmid {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return Names(u.Unwrap(), vmid)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if Names(e, vmid) {
				return true
			}
		}
	}
	return false
}

// Wrap names container vmid in err, unless err names it already. A nil err
// stays nil.
func Wrap(vmid int, err error) error {
	if err == nil || Names(err, vmid) {
		return err
	}
	return &Error{VMID: vmid, Err: err}
}

// Errorf is fmt.Errorf (%w included) naming container vmid: "CT 101: ...".
func Errorf(vmid int, format string, a ...any) error {
	return Wrap(vmid, fmt.Errorf(format, a...))
}

// Text is err's text naming container vmid once, for a log line or a
// terminal.
func Text(vmid int, err error) string { return Wrap(vmid, err).Error() }

// Sprintf is a line about container vmid: "CT 101: " and the formatted text.
func Sprintf(vmid int, format string, a ...any) string {
	return Name(vmid) + ": " + fmt.Sprintf(format, a...)
}
