package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Error reports everything wrong with a configuration. Diags holds one
// diagnostic per problem; those with a Subject point into the file, the
// others concern the environment or a Config built in code.
type Error struct {
	Diags hcl.Diagnostics
}

// Error formats one problem per line, as "file:line:col: summary: detail"
// for a diagnostic with a Subject and "summary: detail" for one without.
func (e *Error) Error() string {
	var b strings.Builder
	for i, d := range e.Diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(formatDiag(d))
	}
	return b.String()
}

// formatDiag formats one diagnostic as a line of Error's output.
// oneLine folds the whitespace of s, newlines included, into single spaces:
// some of hclsyntax's details span several lines, and an error has one
// line per problem.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func formatDiag(d *hcl.Diagnostic) string {
	var b strings.Builder
	if d.Subject != nil {
		b.WriteString(pos(d.Subject))
		b.WriteString(": ")
	}
	if d.Severity == hcl.DiagWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(oneLine(d.Summary))
	if d.Detail != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(d.Detail))
	}
	return b.String()
}

// errorOf returns the errors among diags as an *Error, in file order with
// position-less ones last, or nil if there are none.
func errorOf(diags hcl.Diagnostics) error {
	if !diags.HasErrors() {
		return nil
	}
	var errs hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	slices.SortStableFunc(errs, compareDiags)
	return &Error{Diags: errs}
}

// compareDiags orders diagnostics by file and position; those without a
// Subject come after all others and keep their relative order.
func compareDiags(a, b *hcl.Diagnostic) int {
	switch {
	case a.Subject == nil && b.Subject == nil:
		return 0
	case a.Subject == nil:
		return 1
	case b.Subject == nil:
		return -1
	}
	return cmp.Or(
		cmp.Compare(a.Subject.Filename, b.Subject.Filename),
		cmp.Compare(a.Subject.Start.Line, b.Subject.Start.Line),
		cmp.Compare(a.Subject.Start.Column, b.Subject.Start.Column),
	)
}

// errorf returns an error diagnostic about subject, which may be nil.
func errorf(subject *hcl.Range, summary, format string, args ...any) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  subject,
	}
}

// at formats a position for use inside a diagnostic's detail, as
// " (config.hcl:12:3)", or returns "" for a nil range.
func at(r *hcl.Range) string {
	if r == nil {
		return ""
	}
	return " (" + pos(r) + ")"
}

// pos formats the start of r as file:line:col; a range in no named file
// is in "<input>".
func pos(r *hcl.Range) string {
	name := r.Filename
	if name == "" {
		name = "<input>"
	}
	return fmt.Sprintf("%s:%d:%d", name, r.Start.Line, r.Start.Column)
}
