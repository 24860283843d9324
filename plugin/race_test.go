//go:build race

package plugin

// raceEnabled makes the integration tests build the plugin binaries with
// -race too, which reuses the packages `go test -race` already compiled.
const raceEnabled = true
