package cli

import (
	"flag"
	"fmt"
	"strings"
)

// usage is the text of `help`: the common commands first, then the others.
func (a *App) usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s <command> [arguments] [flags]\n", a.Name)
	width := 0
	for _, c := range a.Commands {
		width = max(width, len(c.Name))
	}
	section := func(title string, common bool) {
		fmt.Fprintf(&b, "\n%s:\n", title)
		for _, c := range a.Commands {
			if c.Common == common {
				fmt.Fprintf(&b, "  %-*s  %s\n", width, c.Name, c.Summary)
			}
		}
	}
	section("commands", true)
	section("more commands", false)
	fmt.Fprintf(&b, "\n'%s <command> --help' shows a command's flags and examples;\n'%s --version' the version.\n", a.Name, a.Name)
	if a.Footer != "" {
		b.WriteString("\n" + a.Footer)
	}
	return b.String()
}

// synopsis is "nvidiaprep enable <vmid> [flags]".
func (a *App) synopsis(c *Command) string {
	s := a.Name + " " + c.Name
	if c.Args != "" {
		s += " " + c.Args
	}
	if a.flagSet(c) != nil && hasFlags(a.flagSet(c)) {
		s += " [flags]"
	}
	return s
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// commandHelp is the text of `<command> --help`: synopsis, description,
// flags (two dashes) and examples.
func (a *App) commandHelp(c *Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n", a.synopsis(c))
	help := c.Help
	if help == "" {
		help = c.Summary
	}
	b.WriteString(strings.TrimRight(help, "\n") + "\n")
	fs := a.flagSet(c)
	type row struct{ left, usage string }
	var rows []row
	width := len("-h, --help")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		left := "--" + f.Name
		switch {
		case isBool(f) && f.DefValue == "true":
			left += "=false"
		case isBool(f):
		case name != "":
			left += " " + name
		default:
			left += " VALUE"
		}
		if !isBool(f) && f.DefValue != "" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		width = max(width, len(left))
		rows = append(rows, row{left, usage})
	})
	rows = append(rows, row{"-h, --help", "this help"})
	b.WriteString("\nflags:\n")
	for _, r := range rows {
		lines := strings.Split(r.usage, "\n")
		fmt.Fprintf(&b, "  %-*s  %s\n", width, r.left, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(&b, "  %-*s  %s\n", width, "", l)
		}
	}
	if len(c.Examples) > 0 {
		b.WriteString("\nexamples:\n")
		for _, e := range c.Examples {
			cmd, what, ok := strings.Cut(e, "  # ")
			fmt.Fprintf(&b, "  %s\n", cmd)
			if ok {
				fmt.Fprintf(&b, "      %s\n", what)
			}
		}
	}
	return b.String()
}

// suggest returns the candidate closest to s when it is close enough to be
// a typo of it (a prefix, or at most a third of its letters wrong), else "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := distance(s, c)
		if len(s) >= 3 && strings.HasPrefix(c, s) {
			d = 1
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, (len(s)+2)/3) {
		return best
	}
	return ""
}

// distance is the Damerau-Levenshtein (optimal string alignment) distance.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
