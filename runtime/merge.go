package runtime

// MergePatch applies patch to dst and returns the result: objects merge key by
// key recursively, arrays and scalars replace, and a null value deletes the key
// (RFC 7396). dst may be nil. Neither argument's nested maps are shared with
// the result, so callers may keep using patch.
func MergePatch(dst, patch map[string]any) map[string]any {
	if len(patch) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]any, len(patch))
	}
	for k, pv := range patch {
		if pv == nil {
			delete(dst, k)
			continue
		}
		if pm, ok := pv.(map[string]any); ok {
			dm, _ := dst[k].(map[string]any)
			dst[k] = MergePatch(cloneMap(dm), pm)
			continue
		}
		dst[k] = cloneValue(pv)
	}
	return dst
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return cloneMap(t)
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = cloneValue(t[i])
		}
		return out
	default:
		return v
	}
}

// CloneMap returns a deep copy of a JSON object.
func CloneMap(m map[string]any) map[string]any { return cloneMap(m) }
