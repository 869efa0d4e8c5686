package ctexec

import (
	"strconv"
	"strings"
	"testing"
)

func TestCappedKeepsHeadAndTail(t *testing.T) {
	var c capped
	c.Write([]byte("small\n"))
	if c.String() != "small\n" {
		t.Fatalf("%q", c.String())
	}
	c = capped{}
	c.Write([]byte("START"))
	chunk := []byte(strings.Repeat("x", 4096))
	for i := 0; i < 16<<10; i++ { // 64 MiB
		c.Write(chunk)
	}
	c.Write([]byte("ERROR: the end\n"))
	s := c.String()
	if len(s) > keepHead+keepTail+100 {
		t.Fatalf("kept %d bytes", len(s))
	}
	dropped := int64(5+64<<20+15) - int64(keepHead+keepTail)
	if !strings.HasPrefix(s, "START") || !strings.HasSuffix(s, "ERROR: the end\n") || !strings.Contains(s, "[nvidiaprep: "+strconv.FormatInt(dropped, 10)+" bytes of output left out]") {
		t.Fatalf("head %q ... tail %q", s[:20], s[len(s)-120:])
	}
}
