// Package chub holds ComputeHub's domain: compute instances, workspaces, users,
// operations, the VM size catalog, the errors they raise, and the small
// interfaces (Store, Runtime) the server, reconciler and runtime drivers meet at.
// It imports only the standard library.
package chub
