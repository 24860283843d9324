package daemon

import (
	"strings"
	"testing"

	"github.com/epaxosd/epaxosd/proto/epaxospb"
)

// A bad request is refused with a reason, before it reaches the protocol.
func TestCommandFromRequest_RejectsBadRequestsWithAReason(t *testing.T) {
	ok := func() *epaxospb.ProposeRequest {
		return &epaxospb.ProposeRequest{ClientId: 1, Seq: 1, Access: epaxospb.Access_WRITE, Key: []byte("k"), Value: []byte("v")}
	}
	cases := map[string]struct {
		mutate func(*epaxospb.ProposeRequest)
		reason string
	}{
		"no access":       {func(r *epaxospb.ProposeRequest) { r.Access = epaxospb.Access_ACCESS_UNSPECIFIED }, "access"},
		"unknown access":  {func(r *epaxospb.ProposeRequest) { r.Access = 42 }, "access"},
		"no client id":    {func(r *epaxospb.ProposeRequest) { r.ClientId = 0 }, "client_id"},
		"no seq":          {func(r *epaxospb.ProposeRequest) { r.Seq = 0 }, "seq"},
		"empty key":       {func(r *epaxospb.ProposeRequest) { r.Key = nil }, "key"},
		"huge key":        {func(r *epaxospb.ProposeRequest) { r.Key = make([]byte, MaxKeyBytes+1) }, "key"},
		"huge value":      {func(r *epaxospb.ProposeRequest) { r.Value = make([]byte, MaxValueBytes+1) }, "value"},
		"read with value": {func(r *epaxospb.ProposeRequest) { r.Access = epaxospb.Access_READ }, "takes no value"},
	}
	for name, tc := range cases {
		req := ok()
		tc.mutate(req)
		if _, err := commandFromRequest(req); err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: error %v, want one mentioning %q", name, err, tc.reason)
		}
	}
	if c, err := commandFromRequest(ok()); err != nil || c.Key != "k" || string(c.Value) != "v" {
		t.Fatalf("valid request: %+v, %v", c, err)
	}
}
