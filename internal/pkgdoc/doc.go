// Package pkgdoc holds no code: its test checks that every package of the
// module starts with a doc comment ("// Package x ..." or, for a command,
// "// Command x ..."), as the style guide asks.
package pkgdoc
