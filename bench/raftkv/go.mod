module github.com/epaxosd/epaxosd/bench/raftkv

go 1.26.8

require (
	github.com/epaxosd/epaxosd v0.0.0-00010101000000-000000000000
	github.com/hashicorp/go-hclog v1.6.3
	github.com/hashicorp/raft v1.8.0
	github.com/hashicorp/raft-boltdb/v2 v2.3.1
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/armon/go-metrics v0.4.1 // indirect
	github.com/boltdb/bolt v1.3.1 // indirect
	github.com/fatih/color v1.13.0 // indirect
	github.com/hashicorp/go-immutable-radix v1.3.1 // indirect
	github.com/hashicorp/go-metrics v0.7.0 // indirect
	github.com/hashicorp/go-msgpack/v2 v2.1.5 // indirect
	github.com/hashicorp/golang-lru v1.0.2 // indirect
	github.com/mattn/go-colorable v0.1.13 // indirect
	github.com/mattn/go-isatty v0.0.17 // indirect
	go.etcd.io/bbolt v1.3.11 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
)

// The client API and its generated code come from the enclosing module.
replace github.com/epaxosd/epaxosd => ../..

// raft v1.8.0 asks for go-metrics v0.7.0, which removed the compat package
// that raft-boltdb/v2 v2.3.1 imports; v0.6.1 has both what raft uses and
// compat.
replace github.com/hashicorp/go-metrics => github.com/hashicorp/go-metrics v0.6.1
