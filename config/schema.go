package config

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The schemas of a configuration file and of its blocks. hcl reports any
// attribute or block they do not list, a repeated attribute, and a block
// with the wrong number of labels.
var (
	fileBodySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "name"}, {Name: "data_dir"}, {Name: "timeout"}, {Name: "thrifty"},
			{Name: "aggregate"}, {Name: "log_level"}, {Name: "seed"},
			{Name: "client_rate_limit"}, {Name: "emulated_peer_delay"}, {Name: "metrics"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "plugin", LabelNames: []string{"name"}},
			{Type: "replica", LabelNames: []string{"name"}},
			{Type: "tls"},
		},
	}
	pluginBodySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "command"}, {Name: "args"}},
	}
	replicaBodySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "pid"}, {Name: "address"}},
	}
	tlsBodySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "ca_file"}, {Name: "cert_file"}, {Name: "key_file"}, {Name: "server_name"},
		},
	}
)

// fileSchema is a configuration file checked against fileBodySchema, its
// attributes still raw (nil when absent). They are decoded one by one (see
// decoder), so that each bad value is reported at its own range and none
// hides the others.
type fileSchema struct {
	Attrs     hcl.Attributes
	Plugins   []blockSchema
	Replicas  []blockSchema
	TLS       []blockSchema
	Malformed map[string]bool // block types with a block that hcl rejected (and reported) for its labels
}

// blockSchema is a plugin, replica or tls block: its label (none for tls),
// where it is and its raw attributes.
type blockSchema struct {
	Label      string
	LabelRange hcl.Range
	DefRange   hcl.Range
	Attrs      hcl.Attributes
}

// readSchema checks body against fileBodySchema and returns what it holds.
func readSchema(body hcl.Body) (*fileSchema, hcl.Diagnostics) {
	content, diags := body.Content(fileBodySchema)
	fs := &fileSchema{Attrs: content.Attributes, Malformed: make(map[string]bool)}
	written := make(map[string]int)
	if sb, ok := body.(*hclsyntax.Body); ok {
		for _, b := range sb.Blocks {
			written[b.Type]++
		}
	}
	for _, b := range content.Blocks {
		written[b.Type]--
		bs, d := readBlock(b)
		diags = append(diags, d...)
		switch b.Type {
		case "plugin":
			fs.Plugins = append(fs.Plugins, bs)
		case "replica":
			fs.Replicas = append(fs.Replicas, bs)
		case "tls":
			fs.TLS = append(fs.TLS, bs)
		}
	}
	for typ, n := range written {
		fs.Malformed[typ] = n > 0
	}
	return fs, diags
}

// readBlock checks a block's body against the schema for its type.
func readBlock(b *hcl.Block) (blockSchema, hcl.Diagnostics) {
	schema := replicaBodySchema
	switch b.Type {
	case "plugin":
		schema = pluginBodySchema
	case "tls":
		schema = tlsBodySchema
	}
	content, diags := b.Body.Content(schema)
	bs := blockSchema{DefRange: b.DefRange, Attrs: content.Attributes}
	if len(b.Labels) > 0 {
		bs.Label, bs.LabelRange = b.Labels[0], b.LabelRanges[0]
	}
	return bs, diags
}
