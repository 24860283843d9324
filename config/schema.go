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
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "plugin", LabelNames: []string{"name"}},
			{Type: "replica", LabelNames: []string{"name"}},
		},
	}
	pluginBodySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "command"}, {Name: "args"}},
	}
	replicaBodySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "pid"}, {Name: "address"}},
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
	Malformed map[string]bool // block types with a block that hcl rejected (and reported) for its labels
}

// blockSchema is a plugin or replica block: its label, where it is and its
// raw attributes.
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
	if b.Type == "plugin" {
		schema = pluginBodySchema
	}
	content, diags := b.Body.Content(schema)
	return blockSchema{
		Label:      b.Labels[0],
		LabelRange: b.LabelRanges[0],
		DefRange:   b.DefRange,
		Attrs:      content.Attributes,
	}, diags
}
