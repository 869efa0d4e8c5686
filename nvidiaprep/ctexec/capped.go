package ctexec

import (
	"bytes"
	"fmt"
)

// Limits of what Run keeps of each output stream of a command. A container's
// root chooses what its commands print (it can replace /bin/sh), and the
// worker that reads it runs on the host: without a bound it could fill the
// host's memory.
const (
	keepHead = 1 << 20  // the start, which callers parse
	keepTail = 64 << 10 // the end, where errors are
)

// capped keeps the first keepHead bytes written to it and the last keepTail
// after them, and counts what it drops in between.
type capped struct {
	head    bytes.Buffer
	tail    []byte
	dropped int64
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if room := keepHead - c.head.Len(); room > 0 {
		if len(p) <= room {
			c.head.Write(p)
			return n, nil
		}
		c.head.Write(p[:room])
		p = p[room:]
	}
	c.tail = append(c.tail, p...)
	if over := len(c.tail) - keepTail; over > keepTail {
		c.dropped += int64(over)
		c.tail = append(c.tail[:0], c.tail[over:]...)
	}
	return n, nil
}

// String is what was kept, with a line saying how much was dropped.
func (c *capped) String() string {
	over := len(c.tail) - keepTail
	if over <= 0 && c.dropped == 0 {
		return c.head.String() + string(c.tail)
	}
	if over < 0 {
		over = 0
	}
	return fmt.Sprintf("%s\n[nvidiaprep: %d bytes of output left out]\n%s", c.head.String(), c.dropped+int64(over), c.tail[over:])
}
