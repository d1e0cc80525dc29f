// Package runtime is claimsmith's domain root: the login event, the commands a
// rule answers with, the result of a pipeline run, the Rule contract and the
// errors every layer shares. It imports nothing of claimsmith's own; the
// technology packages (authz backends, wasm, token, hooks) import it.
package runtime
