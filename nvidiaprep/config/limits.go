package config

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/BurntSushi/toml"

	"nvidiaprep/nvidiaprep/fsutil"
)

// The limits a configuration file is held to (DefaultLimits). The TOML
// decoder's time and memory grow with a file's keys and, with the square,
// with how deeply its arrays and inline tables nest (16 KiB of nested inline
// tables took 3 s and 550 MiB): the hook and the units' drop-in sit on
// container starts, and the cluster file reaches every node, so no file may
// cost more than a bounded fraction of a second.
const (
	// MaxFileSize is the largest file read: about 2000 [containers.N]
	// tables, which decode in tens of milliseconds.
	MaxFileSize = 128 << 10
	// MaxDepth is how deeply arrays and inline tables may nest (a table
	// header's brackets count): nvidiaprep's own keys nest 3 deep at most,
	// as in containers = { 101 = { gpus = ["0"] } }.
	MaxDepth = 8
	// MaxDecodeTime bounds decoding one file, whatever it holds: a file
	// within the other limits decodes in well under this.
	MaxDecodeTime = 2 * time.Second
)

// ErrLimit is what errors.Is finds in an error about a file over one of
// its Limits.
var ErrLimit = errors.New("over a limit on configuration files")

// Limits bound what reading one configuration file may cost. A zero field
// takes its default.
type Limits struct {
	Size       int64         // bytes
	Depth      int           // nesting of arrays and inline tables
	DecodeTime time.Duration // decoding it
}

// DefaultLimits are the limits Load and LoadFiles hold every file to.
func DefaultLimits() Limits {
	return Limits{Size: MaxFileSize, Depth: MaxDepth, DecodeTime: MaxDecodeTime}
}

func (lim Limits) withDefaults() Limits {
	d := DefaultLimits()
	if lim.Size <= 0 {
		lim.Size = d.Size
	}
	if lim.Depth <= 0 {
		lim.Depth = d.Depth
	}
	if lim.DecodeTime <= 0 {
		lim.DecodeTime = d.DecodeTime
	}
	return lim
}

// errSkip means a file that is not there to read: no name, or an optional
// file that is missing.
var errSkip = errors.New("no file")

// read reads a file within the size limit.
func (lim Limits) read(f File) ([]byte, error) {
	lim = lim.withDefaults()
	if f.Path == "" {
		return nil, errSkip
	}
	text, err := fsutil.ReadRegular(f.Path, lim.Size)
	switch {
	case f.Optional && errors.Is(err, fs.ErrNotExist):
		return nil, errSkip
	case errors.Is(err, fsutil.ErrTooLarge):
		return nil, &Error{File: f.Path, Err: ErrLimit,
			Msg: fmt.Sprintf("the file is larger than %s, the limit on a configuration file: nothing in it is read, so every start that reads it is refused; keep it to the tables of the containers that use nvidiaprep", sizeName(lim.Size))}
	case err != nil:
		return nil, fmt.Errorf("read config file: %w", err)
	}
	return text, nil
}

// decode decodes text into a copy of into within the time limit, and
// stores the result in into only when it finishes in time. A decode that
// runs out of time is left to finish in the background: the programs that
// load a configuration are short-lived, and the size and nesting limits
// bound what it can cost.
func (lim Limits) decode(name string, text []byte, into *fileData) (toml.MetaData, error) {
	lim = lim.withDefaults()
	type result struct {
		md   toml.MetaData
		data fileData
		err  error
	}
	done := make(chan result, 1)
	data := *into
	go func() {
		md, err := toml.Decode(string(text), &data)
		done <- result{md, data, err}
	}()
	timer := time.NewTimer(lim.DecodeTime)
	defer timer.Stop()
	select {
	case r := <-done:
		*into = r.data
		return r.md, r.err
	case <-timer.C:
		return toml.MetaData{}, &Error{File: name, Err: ErrLimit,
			Msg: fmt.Sprintf("decoding the file took longer than %v, the limit on a configuration file: nothing in it is read, so every start that reads it is refused; simplify it", lim.DecodeTime)}
	}
}

// sizeName writes a byte count for messages: "128 KiB".
func sizeName(n int64) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
