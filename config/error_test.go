package config

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestError_Format(t *testing.T) {
	at := func(file string, line, col int) *hcl.Range {
		return &hcl.Range{Filename: file, Start: hcl.Pos{Line: line, Column: col}, End: hcl.Pos{Line: line, Column: col + 1}}
	}
	err := errorOf(hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "Env problem", Detail: "bad."},
		{Severity: hcl.DiagError, Summary: "Later", Detail: "second.", Subject: at("a.hcl", 9, 2)},
		{Severity: hcl.DiagWarning, Summary: "Ignored warning", Subject: at("a.hcl", 1, 1)},
		{Severity: hcl.DiagError, Summary: "No detail", Subject: at("a.hcl", 3, 14)},
		{Severity: hcl.DiagError, Summary: "Unnamed", Detail: "x.", Subject: at("", 1, 5)},
	})
	want := "<input>:1:5: Unnamed: x.\n" +
		"a.hcl:3:14: No detail\n" +
		"a.hcl:9:2: Later: second.\n" +
		"Env problem: bad."
	if err == nil || err.Error() != want {
		t.Errorf("Error() =\n%v\nwant\n%s", err, want)
	}
}

func TestErrorOf_NilWithoutErrors(t *testing.T) {
	warn := hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "w"}}
	if err := errorOf(warn); err != nil {
		t.Errorf("errorOf(only warnings) = %v, want nil", err)
	}
	if err := errorOf(nil); err != nil {
		t.Errorf("errorOf(nil) = %v, want nil", err)
	}
}

func TestError_MarksWarnings(t *testing.T) {
	r := &hcl.Range{Filename: "a.hcl", Start: hcl.Pos{Line: 2, Column: 3}}
	err := &Error{Diags: hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "Deprecated", Detail: "use x.", Subject: r}}}
	if got, want := err.Error(), "a.hcl:2:3: warning: Deprecated: use x."; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
