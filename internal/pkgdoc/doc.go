// Package pkgdoc holds no code: its tests check the house rules over the
// whole module — every package starts with a doc comment ("// Package x
// ..." or, for a command, "// Command x ..."), and non-test code keeps to
// files of at most 600 lines, functions of at most 80 (a table-like one
// marked payd:long-func with its reason), interfaces of at most 6 methods,
// and a cmd/payd of at most 1,600 lines.
package pkgdoc
