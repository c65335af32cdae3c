// Package reliability holds payd's reliability evidence: harnesses that
// kill `payd serve` with SIGKILL in the middle of its work, soak the
// reconciler in every fault the Douyin simulator can inject, lock the
// database or make it refuse writes, and scan debug logs for secrets. Each
// harness ends by comparing the simulator's ledger with what was declared:
// every refund and settlement executed exactly once, for the exact amount.
//
// The package has no code of its own beyond these tests; RELIABILITY.md at
// the repository root records the commands for the full runs and their
// figures.
package reliability
