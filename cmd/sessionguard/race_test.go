//go:build race

package main

// raceEnabled makes the process tests build the binary with the race
// detector too, when they run under it: a race in the real server then
// fails the test (a race report makes the process exit non-zero).
const raceEnabled = true
