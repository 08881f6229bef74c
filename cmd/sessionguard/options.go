package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envPrefix starts the name of the environment variable that can stand in
// for a flag: -idle-timeout is also SESSIONGUARD_IDLE_TIMEOUT.
const envPrefix = "SESSIONGUARD_"

// envName returns the environment variable that stands in for the flag name.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// environment is the process's environment variables by name: what the
// flags fall back to, and what unknownVariables looks through.
type environment map[string]string

// environFrom returns the environment of "NAME=value" pairs, as os.Environ
// gives them. Of a name given twice the first wins, as in os.Getenv.
func environFrom(pairs []string) environment {
	env := make(environment, len(pairs))
	for _, kv := range pairs {
		name, value, ok := strings.Cut(kv, "=")
		if _, seen := env[name]; ok && !seen {
			env[name] = value
		}
	}
	return env
}

// testVariables are the SESSIONGUARD_* variables that the repository's own
// tests read (go test, .ci/run), not the program: a developer's shell may
// hold them while running sessionguard, and they are no misspelling.
var testVariables = []string{"SESSIONGUARD_CI", "SESSIONGUARD_CHROMIUM", "SESSIONGUARD_SCREENSHOTS", "SESSIONGUARD_NGINX", "SESSIONGUARD_CADDY"}

// unknownVariables returns a warning for every SESSIONGUARD_* variable in
// env that no command reads, in name order, naming the variable of the
// closest flag when it looks like a misspelling of it: a mistyped variable
// would otherwise leave its setting at the default without a word. known
// maps each variable a command reads to its flag.
func unknownVariables(env environment, known map[string]string) []string {
	var warnings []string
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if !strings.HasPrefix(name, envPrefix) || known[name] != "" ||
			strings.HasPrefix(name, envPrefix+"TEST_") || slices.Contains(testVariables, name) {
			continue
		}
		closest, distance := "", -1
		for _, k := range slices.Sorted(maps.Keys(known)) {
			if d := editDistance(strings.TrimPrefix(name, envPrefix), strings.TrimPrefix(k, envPrefix)); distance < 0 || d < distance {
				closest, distance = k, d
			}
		}
		// A few letters off is a typo; more is another word altogether,
		// which a suggestion would only confuse.
		if closest != "" && distance <= max(2, len(name[len(envPrefix):])/4) {
			warnings = append(warnings, fmt.Sprintf("%s is set but no flag reads it: did you mean %s (-%s)?", name, closest, known[closest]))
		} else {
			warnings = append(warnings, fmt.Sprintf("%s is set but no flag reads it (see 'sessionguard serve -h' for the variables)", name))
		}
	}
	return warnings
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// errHelp is returned by flagSet.parse when -h or -help was asked for: the
// usage has been written to stdout, and the command succeeds.
var errHelp = errors.New("help requested")

// usageError is a mistake in the command line or the environment. The
// program prints it as one line and exits with code 2, without the usage:
// the line names the flag, and -h is one command away.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// flagSet is a flag.FlagSet whose flags may also come from the environment,
// and whose values are all converted after parsing, so that a bad value, from
// either source, is reported the same way: one line naming the flag, with the
// converter's own reason (flag.FlagSet would say "parse error").
type flagSet struct {
	fs       *flag.FlagSet
	command  string // "sessionguard user add", for "see ... -h"
	synopsis string // "sessionguard user add [flags] NAME"
	about    string // paragraphs under the synopsis
	options  []*option
}

// option is one flag. Its value is kept as text until parse converts it.
type option struct {
	name    string
	def     string // the default, as it would be written on the command line
	arg     string // the placeholder in the help ("DSN"); empty for a bool
	usage   string
	defHelp string // the default as the help describes it, when def is ""
	fromEnv bool   // SESSIONGUARD_<NAME> stands in for the flag
	boolean bool

	// multi options may be repeated on the command line; their values are
	// kept in values, and the environment gives them comma-separated.
	multi  bool
	values []string

	raw       string
	onCmdLine bool
	explicit  bool   // given on the command line or in the environment
	source    string // where the value came from, for error messages
	convert   func(string) error
}

// Set and String make an option a flag.Value that only records its text;
// IsBoolFlag lets a boolean flag stand alone ("-json").
func (o *option) Set(s string) error {
	o.raw, o.onCmdLine = s, true
	if o.multi {
		o.values = append(o.values, s)
	}
	return nil
}
func (o *option) String() string   { return o.raw }
func (o *option) IsBoolFlag() bool { return o.boolean }

// newFlagSet returns an empty flagSet for command ("sessionguard user add"),
// whose help shows synopsis and about.
func newFlagSet(command, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	// Errors and help are written by parse and printUsage, not by the
	// flag package, which would dump the usage after every mistake.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{fs: fs, command: command, synopsis: synopsis, about: about}
}

func (f *flagSet) add(o *option) *option {
	f.options = append(f.options, o)
	f.fs.Var(o, o.name, o.usage)
	return o
}

// String defines a text flag that the environment may also set.
func (f *flagSet) String(p *string, name, def, arg, usage string) *option {
	return f.add(&option{name: name, def: def, arg: arg, usage: usage, fromEnv: true,
		convert: func(s string) error { *p = s; return nil }})
}

// Duration defines a duration flag ("90s", "15m", "12h") that the
// environment may also set.
func (f *flagSet) Duration(p *time.Duration, name, def, usage string) *option {
	return f.add(&option{name: name, def: def, arg: "DURATION", usage: usage, fromEnv: true,
		convert: func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return err
			}
			*p = d
			return nil
		}})
}

// Bool defines a boolean flag, false by default, that the environment may
// also set (to any value strconv.ParseBool accepts).
func (f *flagSet) Bool(p *bool, name, usage string) *option {
	return f.add(&option{name: name, def: "false", usage: usage, fromEnv: true, boolean: true,
		convert: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return errors.New("want true or false")
			}
			*p = b
			return nil
		}})
}

// Strings defines a flag that may be given several times, each time with
// one value; the environment gives the values comma-separated. check, if
// not nil, checks each value.
func (f *flagSet) Strings(p *[]string, name, arg, usage string, check func(string) error) *option {
	o := &option{name: name, arg: arg, usage: usage, fromEnv: true, multi: true, defHelp: "none"}
	o.convert = func(string) error {
		*p = nil
		for _, v := range o.values {
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*p = append(*p, v)
		}
		return nil
	}
	return f.add(o)
}

// on makes the boolean option o true by default ("-inject-script=false"
// turns it off), and returns o.
func (o *option) on() *option { o.def = "true"; return o }

// Choice defines a text flag whose value must be one of choices.
func (f *flagSet) Choice(p *string, name, def string, choices []string, usage string) *option {
	return f.add(&option{name: name, def: def, arg: strings.Join(choices, "|"), usage: usage, fromEnv: true,
		convert: func(s string) error {
			for _, c := range choices {
				if s == c {
					*p = s
					return nil
				}
			}
			return fmt.Errorf("want one of %s", strings.Join(choices, ", "))
		}})
}

// defaultIs sets how the help describes an empty default ("the -db
// database"), and returns o.
func (o *option) defaultIs(help string) *option { o.defHelp = help; return o }

// commandLineOnly makes o a flag that the environment does not set: a
// per-invocation choice (-json, -role) that a variable left over in a shell
// must not make for the user.
func commandLineOnly(o *option) *option { o.fromEnv = false; return o }

// parse parses args, fills in each flag not on the command line from env or
// its default, converts every value, and returns the arguments left after
// the flags. A flag given on the command line wins over the environment; an
// empty variable counts as unset.
func (f *flagSet) parse(args []string, env environment, stdout io.Writer) ([]string, error) {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.printUsage(stdout)
			return nil, errHelp
		}
		return nil, usageErrorf("%v (see '%s -h')", err, f.command)
	}
	for _, o := range f.options {
		value := o.def
		o.source = "-" + o.name
		switch {
		case o.onCmdLine:
			value, o.explicit = o.raw, true
		case o.fromEnv && env[envName(o.name)] != "":
			value, o.explicit = env[envName(o.name)], true
			o.source = "-" + o.name + " (from " + envName(o.name) + ")"
			if o.multi {
				for part := range strings.SplitSeq(value, ",") {
					if part = strings.TrimSpace(part); part != "" {
						o.values = append(o.values, part)
					}
				}
			}
		}
		o.raw = value
		if err := o.convert(value); err != nil {
			if o.multi {
				return nil, usageErrorf("invalid value for %s: %v", o.source, err)
			}
			return nil, usageErrorf("invalid value %q for %s: %v", value, o.source, err)
		}
	}
	for _, a := range f.fs.Args() {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			return nil, usageErrorf("flag %s after an argument: flags come first (%s)", a, f.synopsis)
		}
	}
	return f.fs.Args(), nil
}

// variables maps the environment variable of each flag that the
// environment may set to the flag's name.
func (f *flagSet) variables() map[string]string {
	vars := make(map[string]string)
	for _, o := range f.options {
		if o.fromEnv {
			vars[envName(o.name)] = o.name
		}
	}
	return vars
}

// lookup returns the option called name; it panics for a name the program
// never defined, which is a bug in this file, not bad input.
func (f *flagSet) lookup(name string) *option {
	for _, o := range f.options {
		if o.name == name {
			return o
		}
	}
	panic("sessionguard: no flag " + name)
}

// printUsage writes the synopsis and every flag with its default and its
// environment variable.
func (f *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n", f.synopsis)
	if f.about != "" {
		fmt.Fprintf(w, "\n%s\n", f.about)
	}
	if len(f.options) == 0 {
		return
	}
	fmt.Fprintf(w, "\nFlags (a flag marked with $NAME can also be set by that environment variable;\nthe command line wins):\n")
	for _, o := range f.options {
		fmt.Fprintf(w, "  -%s", o.name)
		if o.arg != "" {
			fmt.Fprintf(w, " %s", o.arg)
		}
		fmt.Fprintf(w, "\n      %s\n", o.usage)
		var notes []string
		switch {
		case o.multi:
			notes = append(notes, "repeatable")
		case o.boolean && o.def == "true":
			notes = append(notes, "default: true")
		case o.boolean:
		case o.def == "" && o.defHelp != "":
			notes = append(notes, "default: "+o.defHelp)
		case o.def == "":
			notes = append(notes, "default: none")
		default:
			notes = append(notes, "default: "+o.def)
		}
		if o.fromEnv && o.multi {
			notes = append(notes, "$"+envName(o.name)+", comma-separated")
		} else if o.fromEnv {
			notes = append(notes, "$"+envName(o.name))
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "      (%s)\n", strings.Join(notes, "; "))
		}
	}
}

// formatDuration writes d as a person would: 1h rather than 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// checkHostPort checks a listening address: HOST:PORT with a port number
// from 0 to 65535 (0 picks a free port), as in localhost:8080 or :8080. A
// port out of range would otherwise be found only by net.Listen, after the
// stores are opened, and reported as a failure at run time.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT, as in localhost:8080 or :8080")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}
