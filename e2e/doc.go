// Package e2e holds end-to-end tests that build the real epaxosd and plugin
// binaries and run replicas as separate processes from HCL configurations.
package e2e
