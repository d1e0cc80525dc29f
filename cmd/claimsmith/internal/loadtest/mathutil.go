package loadtest

import "math"

func log10(v float64) float64 { return math.Log10(v) }
func pow10(e int) float64     { return math.Pow10(e) }
