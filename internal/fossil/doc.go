// Package fossil implements the Fossil SCM delta format: a compact,
// byte-oriented description of how to rebuild a target from a source.
//
// The format is the one produced by fossil-scm's delta.c and applied by the
// official Centrifugo client SDKs (centrifuge-js, centrifuge-go, ...) when a
// subscription negotiates delta: "fossil". A delta is:
//
//	<target length>\n
//	<count>@<offset>,   copy count bytes of the source starting at offset
//	<count>:<bytes>     insert the next count bytes of the delta literally
//	<checksum>;         32-bit checksum of the target; ends the delta
//
// Every integer is written in a base-64 alphabet ("0-9A-Z_a-z~"), most
// significant digit first. Delta output is deterministic for a given source
// and target, so a hub that computes it once per publication can share it
// with every subscriber.
package fossil
