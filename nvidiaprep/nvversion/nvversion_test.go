package nvversion

import "testing"

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"580.159.04", "580.142", 1}, {"580.142", "580.159.04", -1}, {"465.19", "465.19.01", -1},
		{"580.08", "580.8", 0}, {"1000.1", "999.99.99", 1},
	} {
		if got := Compare(c.a, c.b); got != c.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestProblem(t *testing.T) {
	for v, ok := range map[string]bool{"580.142": true, "580.159.04": true, "580": false, "580.1.2.3": false, "580.x": false, "": false, "580..1": false} {
		if got := Valid(v); got != ok {
			t.Errorf("Valid(%q) = %v, want %v (%s)", v, got, ok, Problem(v))
		}
	}
}
