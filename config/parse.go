package config

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// hostname supplies the default name; tests replace it.
var hostname = os.Hostname

// Parse decodes a configuration from src, HCL native syntax read from
// filename, applies the environment overrides that getenv reports (nil
// means none), fills in defaults and validates the result.
//
// filename appears in errors and becomes Config.File; relative paths in the
// file (data_dir, a plugin command containing a slash, the files of the tls
// block) are taken relative to its directory, while EPAXOS_DATA_DIR and the
// EPAXOS_TLS_* variables are taken as given. A plugin command is replaced by
// the absolute path of the executable it names.
//
// On failure Parse returns a nil Config and an *Error listing every problem
// found.
func Parse(src []byte, filename string, getenv func(string) string) (*Config, error) {
	if err := checkUTF8(src, filename); err != nil {
		return nil, err
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, errorOf(diags)
	}
	fs, d := readSchema(file.Body)
	diags = append(diags, d...)

	s := &sources{
		file:    file.Body.MissingItemRange().Ptr(),
		baseDir: filepath.Dir(filename),
	}
	c, d := fromFile(fs, filename, s)
	diags = append(diags, d...)

	nameSet, d := applyEnv(c, s, getenv)
	diags = append(diags, d...)
	diags = append(diags, c.fillDefaults(s, nameSet || s.name.subject != nil || s.name.reported)...)
	diags = append(diags, c.resolvePluginCommand(s)...)

	c.sortReplicas(s)
	diags = append(diags, c.check(s)...)
	if err := errorOf(diags); err != nil {
		return nil, err
	}
	return c, nil
}

// fromFile returns the Config that the decoded file describes, before
// environment overrides and defaults, recording origins in s.
func fromFile(fs *fileSchema, filename string, s *sources) (*Config, hcl.Diagnostics) {
	c := &Config{
		File:      filename,
		Timeout:   DefaultTimeout,
		Thrifty:   DefaultThrifty,
		Aggregate: DefaultAggregate,
		LogLevel:  DefaultLogLevel,

		ClientRateLimit: DefaultClientRateLimit,
	}
	var d decoder
	if v, o, ok := d.string(fs.Attrs["name"]); ok {
		c.Name, s.name = v, o
	}
	if v, o, ok := d.string(fs.Attrs["data_dir"]); ok {
		c.DataDir, s.dataDir = v, o
	}
	if v, o, ok := d.duration(fs.Attrs["timeout"]); ok {
		c.Timeout, s.timeout = v, o
	}
	if v, _, ok := d.bool(fs.Attrs["thrifty"]); ok {
		c.Thrifty = v
	}
	if v, _, ok := d.bool(fs.Attrs["aggregate"]); ok {
		c.Aggregate = v
	}
	if v, o, ok := d.string(fs.Attrs["log_level"]); ok {
		c.LogLevel, s.logLevel = normalizeLogLevel(v), o
	}
	if v, _, ok := d.int(fs.Attrs["seed"]); ok {
		c.Seed = v
	}
	if v, o, ok := d.int(fs.Attrs["client_rate_limit"]); ok {
		c.ClientRateLimit, s.clientRateLimit = v, o
	}
	if v, o, ok := d.string(fs.Attrs["metrics"]); ok {
		c.Metrics, s.metrics = v, o
	}
	c.EmulatedPeerDelay, s.peerDelay = d.durationMap(fs.Attrs["emulated_peer_delay"])
	c.Plugin = d.plugin(fs.Plugins, fs.Malformed["plugin"], s)
	c.Replicas = d.replicas(fs.Replicas, s)
	s.replicasIncomplete = fs.Malformed["replica"]
	c.TLS = d.tls(fs.TLS, s)
	return c, d.diags
}

// plugin decodes the file's one plugin block; malformed says that hcl
// rejected (and reported) a plugin block that is not among blocks.
func (d *decoder) plugin(blocks []blockSchema, malformed bool, s *sources) Plugin {
	if len(blocks) == 0 {
		s.noPlugin = true
		if malformed {
			return Plugin{}
		}
		d.diags = append(d.diags, errorf(s.file, "Missing plugin block",
			`A plugin block is required, such as plugin "kv" {} for the built-in key-value store.`))
		return Plugin{}
	}
	for _, b := range blocks[1:] {
		d.diags = append(d.diags, errorf(b.DefRange.Ptr(), "Duplicate plugin block",
			"Only one plugin block is allowed; the first is at %s.", pos(&blocks[0].DefRange)))
	}
	b := blocks[0]
	p := Plugin{Name: b.Label}
	s.pluginName = fileOrigin(b.LabelRange)
	if v, o, ok := d.string(b.Attrs["command"]); ok {
		p.Command, s.pluginCommand = v, o
		if v == "" && !o.reported {
			d.diags = append(d.diags, o.errorf("Invalid plugin command",
				"The command must not be empty; leave it out for a built-in plugin."))
			s.pluginCommand.reported = true
		}
	}
	if v, o, ok := d.strings(b.Attrs["args"]); ok {
		p.Args, s.pluginArgs = v, o
	}
	return p
}

// replicas decodes the file's replica blocks, in file order.
func (d *decoder) replicas(blocks []blockSchema, s *sources) []Replica {
	rs := make([]Replica, len(blocks))
	s.replicas = make([]replicaOrigins, len(blocks))
	for i, b := range blocks {
		r := &rs[i]
		ro := &s.replicas[i]
		r.Name = b.Label
		ro.block = b.DefRange.Ptr()
		ro.name = fileOrigin(b.LabelRange)

		pid, o, ok := d.int(b.Attrs["pid"])
		switch {
		case !ok:
			ro.pid = origin{subject: ro.block, reported: true}
			d.diags = append(d.diags, errorf(ro.block, "Missing pid",
				"Replica %q needs a pid, a number from 0 to N-1 that no other replica has.", b.Label))
		case o.reported:
			ro.pid = o
		case pid < 0 || pid > math.MaxUint32:
			ro.pid = o
			ro.pid.reported = true
			d.diags = append(d.diags, o.errorf("Invalid replica pid",
				"pid %d is out of range; a cluster of %s has pids 0 to %d.", pid, plural(len(blocks)), len(blocks)-1))
		default:
			r.PID, ro.pid = uint32(pid), o
		}

		addr, o, ok := d.string(b.Attrs["address"])
		if !ok {
			o = origin{subject: ro.block, reported: true}
			d.diags = append(d.diags, errorf(ro.block, "Missing address",
				"Replica %q needs an address, the host:port it serves peers and clients on.", b.Label))
		}
		r.Address, ro.address = addr, o
	}
	return rs
}

// fillDefaults sets the name from the host name unless nameSet, and the
// data directory from the name unless set; it makes a data directory given
// in the file, or defaulted, relative to the file's directory.
func (c *Config) fillDefaults(s *sources, nameSet bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if !nameSet {
		h, err := hostname()
		if err != nil {
			s.name.reported = true
			diags = append(diags, errorf(s.file, "Missing name",
				"name is not set and the host name is unknown (%s); set name in the file or EPAXOS_NAME.", err))
		}
		c.Name, s.fromHost = h, true
	}
	switch {
	case s.dataDir.env != "":
		// Taken as given: relative to the working directory.
	case c.DataDir == "" && s.dataDir.subject == nil && !s.dataDir.reported:
		if c.Name == "" {
			s.dataDir.reported = true // follows from the name, which is reported
			break
		}
		c.DataDir = filepath.Join(s.baseDir, "data", c.Name)
	case c.DataDir != "" && !filepath.IsAbs(c.DataDir):
		c.DataDir = filepath.Join(s.baseDir, c.DataDir)
	}
	// The metrics file, like data_dir: relative to the file's directory
	// when set in the file, to the working directory when set by EPAXOS_METRICS.
	if c.Metrics != "" && s.metrics.env == "" && !filepath.IsAbs(c.Metrics) {
		c.Metrics = filepath.Join(s.baseDir, c.Metrics)
	}
	return diags
}

// resolvePluginCommand replaces an external plugin's command with the
// absolute path of its executable, or reports why it has none.
func (c *Config) resolvePluginCommand(s *sources) hcl.Diagnostics {
	if c.Plugin.Command == "" || s.pluginCommand.reported {
		return nil
	}
	path, err := resolveCommand(c.Plugin.Command, s.baseDir)
	if err != nil {
		s.pluginCommand.reported = true
		return hcl.Diagnostics{commandError(s.pluginCommand, err)}
	}
	c.Plugin.Command = path
	return nil
}

// sortReplicas sorts c.Replicas, and their origins in s, by PID. Replicas
// with the same PID keep their file order.
func (c *Config) sortReplicas(s *sources) {
	idx := make([]int, len(c.Replicas))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(c.Replicas[a].PID, c.Replicas[b].PID) })
	rs := make([]Replica, len(idx))
	ros := make([]replicaOrigins, len(idx))
	for i, j := range idx {
		rs[i] = c.Replicas[j]
		ros[i] = s.replica(j)
	}
	c.Replicas, s.replicas = rs, ros
}

// checkUTF8 reports the first byte of src that is not UTF-8. HCL files are
// UTF-8, and hclsyntax miscounts lines after an invalid byte, which would
// put later errors at the wrong line.
func checkUTF8(src []byte, filename string) error {
	if utf8.Valid(src) {
		return nil
	}
	line, col, off := 1, 1, 0
	for off < len(src) {
		r, size := utf8.DecodeRune(src[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		off += size
	}
	p := hcl.Pos{Line: line, Column: col, Byte: off}
	return errorOf(hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Invalid UTF-8",
		Detail:   fmt.Sprintf("Byte 0x%02x is not UTF-8; a configuration file must be UTF-8 text.", src[off]),
		Subject:  &hcl.Range{Filename: filename, Start: p, End: hcl.Pos{Line: line, Column: col + 1, Byte: off + 1}},
	}})
}
