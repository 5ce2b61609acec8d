// Package benchmarks compares keyward's verification paths with their
// floors and with the peers a user would pick instead, in one test binary,
// so that every figure can be read as a ratio from one run. See
// BENCHMARKS.md at the repository root for the results and scripts/bench
// for the command that produces them.
//
// It is a module of its own, so that the peers it measures (echo) are
// never downloaded by keyward's users.
package benchmarks
