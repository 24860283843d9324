package config

import (
	"fmt"
	"math/big"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder decodes raw attributes into Go values, collecting a diagnostic
// for each one that is unusable. Each method returns the value, the origin
// to report later problems at, and whether the attribute was given: a
// missing or null attribute is not given and leaves the default in place.
// An unusable attribute is given, with an origin marked reported, so that
// no later check complains about it again.
type decoder struct {
	diags hcl.Diagnostics
}

// value evaluates attr as a constant of type ty.
func (d *decoder) value(attr *hcl.Attribute, ty cty.Type) (cty.Value, origin, bool) {
	if attr == nil {
		return cty.NilVal, origin{}, false
	}
	o := fileOrigin(attr.Expr.Range())
	v, diags := attr.Expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		o.reported = true
		return cty.NilVal, o, true
	}
	if v.IsNull() {
		return cty.NilVal, origin{}, false
	}
	v, err := convert.Convert(v, ty)
	if err != nil {
		d.diags = append(d.diags, o.errorf("Incorrect attribute value type",
			"Inappropriate value for attribute %q: %s.", attr.Name, err))
		o.reported = true
		return cty.NilVal, o, true
	}
	if !v.IsWhollyKnown() || v.IsNull() {
		d.diags = append(d.diags, o.errorf("Invalid value", "The value of %q must be a constant.", attr.Name))
		o.reported = true
		return cty.NilVal, o, true
	}
	return v, o, true
}

// string decodes a string attribute.
func (d *decoder) string(attr *hcl.Attribute) (string, origin, bool) {
	v, o, ok := d.value(attr, cty.String)
	if !ok || o.reported {
		return "", o, ok
	}
	return v.AsString(), o, true
}

// bool decodes a bool attribute.
func (d *decoder) bool(attr *hcl.Attribute) (bool, origin, bool) {
	v, o, ok := d.value(attr, cty.Bool)
	if !ok || o.reported {
		return false, o, ok
	}
	return v.True(), o, true
}

// int decodes a whole-number attribute that fits in an int64.
func (d *decoder) int(attr *hcl.Attribute) (int64, origin, bool) {
	v, o, ok := d.value(attr, cty.Number)
	if !ok || o.reported {
		return 0, o, ok
	}
	bf := v.AsBigFloat()
	if n, acc := bf.Int64(); bf.IsInt() && acc == big.Exact {
		return n, o, true
	}
	d.diags = append(d.diags, o.errorf("Incorrect attribute value type",
		"Inappropriate value for attribute %q: a whole number that fits in 64 bits is required.", attr.Name))
	o.reported = true
	return 0, o, true
}

// duration decodes a string attribute holding a Go duration such as "500ms".
func (d *decoder) duration(attr *hcl.Attribute) (time.Duration, origin, bool) {
	s, o, ok := d.string(attr)
	if !ok || o.reported {
		return 0, o, ok
	}
	t, err := parseDuration(s)
	if err != nil {
		d.diags = append(d.diags, o.errorf("Invalid duration", "%s.", err))
		o.reported = true
	}
	return t, o, true
}

// strings decodes a list-of-strings attribute.
func (d *decoder) strings(attr *hcl.Attribute) ([]string, origin, bool) {
	v, o, ok := d.value(attr, cty.List(cty.String))
	if !ok || o.reported {
		return nil, o, ok
	}
	out := make([]string, 0, v.LengthInt())
	for i, e := range v.AsValueSlice() {
		if e.IsNull() {
			d.diags = append(d.diags, o.errorf("Incorrect attribute value type",
				"Inappropriate value for attribute %q: element %d is null.", attr.Name, i))
			o.reported = true
			return nil, o, true
		}
		out = append(out, e.AsString())
	}
	return out, o, true
}

// parseDuration parses a Go duration string, with an error for people.
func parseDuration(s string) (time.Duration, error) {
	t, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write one such as \"500ms\" or \"2s\"", s)
	}
	return t, nil
}
