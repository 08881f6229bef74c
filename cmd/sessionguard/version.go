package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3". Without it, the module version that
// the go command recorded (a pseudo-version or "(devel)") is shown.
var version = ""

// versionString describes this build: version, Go release and, when the
// go command recorded it, the commit and whether the tree was modified.
func versionString() string {
	v, commit, modified := version, "", false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	out := fmt.Sprintf("sessionguard %s %s", v, runtime.Version())
	if commit != "" {
		out += " commit " + commit[:min(12, len(commit))]
		if modified {
			out += " (modified)"
		}
	}
	return out
}
