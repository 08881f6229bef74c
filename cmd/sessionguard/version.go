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

// releaseVersion is this build's version: the -ldflags one, else the
// module version the go command recorded, else "(devel)". It is the version
// label of the sessionguard_build_info metric.
func releaseVersion() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	return v
}

// versionString describes this build: version, Go release and, when the
// go command recorded it, the commit and whether the tree was modified.
func versionString() string {
	commit, modified := "", false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	out := fmt.Sprintf("sessionguard %s %s", releaseVersion(), runtime.Version())
	if commit != "" {
		out += " commit " + commit[:min(12, len(commit))]
		if modified {
			out += " (modified)"
		}
	}
	return out
}
