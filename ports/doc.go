// Package ports declares the boundaries of the core. Inbound ports are the
// use cases the adapters drive (with their command and result types);
// outbound ports are what the use cases need from the world (stores, the
// upstream identity provider, token signing, sealing, time, randomness).
// Adapters and providers implement the outbound ports; the composition root
// wires them together.
package ports
