// Package cli is nvidiaprep's command layer: one table of subcommands, each
// with its flags (Go's flag package underneath), its positional arguments,
// help text and examples. It gives every subcommand the same conventions:
//
//   - `--help` and `-h` print the command's help on stdout and exit 0;
//   - flags are written with two dashes, before or after the positional
//     arguments, as `--flag=value` or `--flag value` (a boolean flag also
//     takes `--flag true`/`--flag false`); `--` ends the flags;
//   - an unknown command or flag is an error with "did you mean";
//   - a command that needs root says "run as root" before anything else;
//   - with `--json` (JSONKeys set) errors are JSON documents too (docs/json.md);
//   - exit status 0 done, 1 failed, 2 wrong usage.
//
// A command declares its flags in Flags and reads them in Run through Call:
//
//	{Name: "enable", Args: "<vmid>", MinArgs: 1, MaxArgs: 1,
//	 Flags: func(fs *flag.FlagSet) { fs.Bool("dry-run", false, "show ...") },
//	 Run: func(c *cli.Call) int { if c.Bool("dry-run") { ... } }}
package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Exit statuses of every command.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// Command is one subcommand.
type Command struct {
	Name string
	// Args is the synopsis of the positional arguments: "<vmid>", "[FILE]".
	Args string
	// Summary is one line for the command list of `help`.
	Summary string
	// Help is the text of `<command> --help`, paragraphs separated by blank lines.
	Help string
	// Examples are command lines, each optionally followed by "  # what it does".
	Examples []string
	// Common commands are listed first in `help`; the others under "more".
	Common bool
	// Root: the command refuses to run for another user, saying so first.
	Root bool
	// MinArgs and MaxArgs bound the positional arguments (MaxArgs < 0: any).
	MinArgs, MaxArgs int
	// JSONKeys, when set, gives the command a --json flag; they are the
	// top-level keys of its JSON document besides the common ones
	// (schema_version, command, error), printed as null when it fails.
	JSONKeys []string
	// Flags declares the command's flags.
	Flags func(fs *flag.FlagSet)
	// Run does the work and returns the exit status.
	Run func(c *Call) int
}

// App is the program: its commands and what the layer needs of the process.
type App struct {
	Name     string // "nvidiaprep"
	Version  string // "nvidiaprep 1.2.3 (commit abc)": printed by --version
	Commands []*Command
	// Footer ends `help` (configuration files, the manual).
	Footer string
	// Geteuid tells the user; nil: os.Geteuid.
	Geteuid func() int
}

// Run runs the command named by args[0] and returns the exit status.
func (a *App) Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, a.usage())
		return ExitUsage
	}
	switch args[0] {
	case "help", "-h", "--help":
		if len(args) > 1 {
			if c := a.Lookup(args[1]); c != nil {
				fmt.Fprint(stdout, a.commandHelp(c))
				return ExitOK
			}
			if args[1] == "help" || args[1] == "version" {
				fmt.Fprint(stdout, a.usage())
				return ExitOK
			}
			return a.unknownCommand(args[1], stderr)
		}
		fmt.Fprint(stdout, a.usage())
		return ExitOK
	case "version", "--version", "-V":
		fmt.Fprintln(stdout, a.Version)
		return ExitOK
	}
	c := a.Lookup(args[0])
	if c == nil {
		return a.unknownCommand(args[0], stderr)
	}
	return a.runCommand(c, args[1:], stdout, stderr)
}

// Lookup finds a command by name.
func (a *App) Lookup(name string) *Command {
	for _, c := range a.Commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (a *App) unknownCommand(name string, stderr io.Writer) int {
	names := make([]string, 0, len(a.Commands)+2)
	for _, c := range a.Commands {
		names = append(names, c.Name)
	}
	names = append(names, "help", "version")
	msg := fmt.Sprintf("%s: unknown command %q", a.Name, name)
	if s := suggest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	fmt.Fprintf(stderr, "%s\nRun '%s help' for the list of commands.\n", msg, a.Name)
	return ExitUsage
}

func (a *App) runCommand(c *Command, args []string, stdout, stderr io.Writer) int {
	call := &Call{App: a, Cmd: c, Stdout: stdout, Stderr: stderr}
	call.Flags = a.flagSet(c)
	// --help wins over everything, the root check included: reading the
	// help needs no privilege.
	for _, arg := range args {
		if arg == "--" {
			break
		}
		if arg == "-h" || arg == "--help" || arg == "-help" {
			fmt.Fprint(stdout, a.commandHelp(c))
			return ExitOK
		}
	}
	// JSON errors need to know about --json before the rest is parsed.
	call.JSON = c.JSONKeys != nil && slices.ContainsFunc(args, func(s string) bool {
		return s == "--json" || s == "-json" || s == "--json=true"
	})
	if c.Root {
		euid := os.Geteuid
		if a.Geteuid != nil {
			euid = a.Geteuid
		}
		if euid() != 0 {
			return call.Fail(ExitFail, "run as root (sudo %s %s ...): it reads and changes the node's configuration, containers and devices", a.Name, c.Name)
		}
	}
	pos, err := parse(call.Flags, args)
	if err == nil {
		switch {
		case len(pos) < c.MinArgs:
			err = fmt.Errorf("missing %s", c.Args)
		case c.MaxArgs >= 0 && len(pos) > c.MaxArgs:
			if c.MaxArgs == 0 {
				err = fmt.Errorf("takes no arguments, got %q", strings.Join(pos, " "))
			} else {
				err = fmt.Errorf("too many arguments: %q (want %s)", strings.Join(pos, " "), c.Args)
			}
		}
	}
	if err != nil {
		return call.Fail(ExitUsage, "%v\nusage: %s\nRun '%s %s --help' for more.", err, a.synopsis(c), a.Name, c.Name)
	}
	call.Args = pos
	call.JSON = c.JSONKeys != nil && call.Bool("json")
	return c.Run(call)
}

func (a *App) flagSet(c *Command) *flag.FlagSet {
	fs := flag.NewFlagSet(a.Name+" "+c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.Flags != nil {
		c.Flags(fs)
	}
	if c.JSONKeys != nil && fs.Lookup("json") == nil {
		fs.Bool("json", false, "print one JSON document (docs/json.md), errors included")
	}
	return fs
}

// parse parses flags and positional arguments in any order: `--name`,
// `-name`, `--name=value`, `--name value`, and for a boolean flag also
// `--name true|false`; `--` makes the rest positional. It returns the
// positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if len(arg) < 2 || arg[0] != '-' {
			pos = append(pos, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			return nil, unknownFlag(fs, name)
		}
		if isBool(f) {
			switch {
			case hasValue:
			case i+1 < len(args) && (args[i+1] == "true" || args[i+1] == "false"):
				i++
				value = args[i]
			default:
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("--%s needs a value (--%s=VALUE or --%s VALUE)", name, name, name)
			}
			i++
			value = args[i]
		}
		if err := fs.Set(name, value); err != nil {
			return nil, fmt.Errorf("invalid value %q for --%s: %v", value, name, err)
		}
	}
	return pos, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func unknownFlag(fs *flag.FlagSet, name string) error {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	msg := fmt.Sprintf("unknown flag --%s", name)
	if s := suggest(name, append(names, "help")); s != "" {
		msg += fmt.Sprintf("; did you mean --%s?", s)
	}
	return fmt.Errorf("%s", msg)
}

// Call is one run of a command: its parsed flags and arguments, where to
// write, and how it reports a failure.
type Call struct {
	App            *App
	Cmd            *Command
	Flags          *flag.FlagSet
	Args           []string
	Stdout, Stderr io.Writer
	// JSON is true when --json was given: the command prints one JSON
	// document, and Fail prints the error as one.
	JSON bool
}

// Set tells whether the flag was given on the command line.
func (c *Call) Set(name string) bool {
	set := false
	c.Flags.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// Bool is a boolean flag's value.
func (c *Call) Bool(name string) bool {
	f := c.Flags.Lookup(name)
	return f != nil && f.Value.(flag.Getter).Get().(bool)
}

// String is a flag's value as text.
func (c *Call) String(name string) string {
	if f := c.Flags.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// Fail reports a failure and returns code: "nvidiaprep <command>: <message>"
// on stderr, or with --json the command's JSON document with its error set
// (stdout, so that a script reads one document whatever happened).
func (c *Call) Fail(code int, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	if c.JSON {
		first, _, _ := strings.Cut(msg, "\nusage: ")
		_ = WriteJSON(c.Stdout, ErrorDocument(c.Cmd, first, code))
		return code
	}
	fmt.Fprintf(c.Stderr, "%s %s: %s\n", c.App.Name, c.Cmd.Name, msg)
	return code
}
