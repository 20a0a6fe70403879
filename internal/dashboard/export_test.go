package dashboard

// SetCSVBounds makes the files CSV stream pages of page files and stop
// after max, until the returned func restores them.
func SetCSVBounds(page, max int) (restore func()) {
	oldPage, oldMax := csvPage, maxCSVFiles
	csvPage, maxCSVFiles = page, max
	return func() { csvPage, maxCSVFiles = oldPage, oldMax }
}
