// Package e2e holds end-to-end tests of the dpiawatch binary: built from this
// repository, run as a separate process against a real Kafka-protocol
// broker, killed and restarted, and judged by what it stored and alerted.
package e2e
