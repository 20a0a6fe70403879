package ledgertest

// Permute calls visit with every order of 0..n-1 (n! of them), in one
// slice it rewrites between calls: the arrival orders the order-
// independence tests of the ledger and of outbound events go through.
func Permute(n int, visit func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			visit(p)
			return
		}
		for i := k; i < n; i++ {
			p[k], p[i] = p[i], p[k]
			rec(k + 1)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0)
}
